"""The shared chat demo starts its answers at the model's recommended sampling, as the Chat tab does: its
temperature slider opened at a fixed 0.7 (the demo model's answers mostly garbled) and its help said it
follows the model. A stand-in engine notes the settings it was asked with (no model)."""
from __future__ import annotations

from webui import demo_app


class Engine:
    def __init__(self):
        self.asked: list[dict] = []

    def stream(self, session_id, messages, **settings):
        self.asked.append(settings)
        yield "hello"


def respond(app):
    return next(f.fn for f in app.fns.values() if getattr(f.fn, "__name__", "") == "respond")


def test_the_demo_starts_at_the_models_recommendation():
    engine = Engine()
    app = demo_app.build_demo(engine, "s", "Bot", sampling={"temperature": 0.2, "top_p": 0.5})
    slider = next(b for b in app.blocks.values() if type(b).__name__ == "Slider" and b.maximum == demo_app.TEMPERATURE[1])
    assert slider.value == 0.2
    list(respond(app)("hi", [], slider.value, 64))
    assert (engine.asked[-1]["temperature"], engine.asked[-1]["top_p"]) == (0.2, 0.5)
