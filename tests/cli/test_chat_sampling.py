"""`python app.py chat` samples with the model's recommended temperature and top_p (its
generation_config.json) unless --temperature / --top-p say otherwise: its fixed 0.7 made the demo model's
first answers look broken. No model runs here: a stand-in engine notes the settings it was asked with."""
from __future__ import annotations

import pytest

from core import demo_model
from core.gen_settings import GenSettings
from core.messages import Msg


class Answer(list):
    """An answer of no words, as the engine's stream is iterated and read."""
    text = ""


@pytest.fixture
def asked(monkeypatch):
    from core import chat
    seen: list[dict] = []

    def stream(self, sid, messages, **settings):
        seen.append(settings)
        return Answer()
    monkeypatch.setattr(chat.ChatEngine, "load", lambda self, *a, **k: "sid")
    monkeypatch.setattr(chat.ChatEngine, "info", lambda self, sid: {})
    monkeypatch.setattr(chat.ChatEngine, "stream", stream)
    monkeypatch.setattr(chat.ChatEngine, "close", lambda self: None)
    return seen


def chat(services, *argv):
    from cli.main import main
    return main(["--home", str(services.workspace.root), "chat", *argv, "--prompt", "hi"])


def said(code: str, **typed) -> str:
    return str(Msg(code, flags=[f"{flag} {v:g}" for flag, v in typed.items()]))


def test_the_default_is_the_models_recommendation(services, asked, capsys):
    assert chat(services, "builtin:danlu-tiny") == 0
    assert (asked[-1]["temperature"], asked[-1]["top_p"]) == (demo_model.SAMPLING["temperature"],
                                                               demo_model.SAMPLING["top_p"])
    # and says so, on stderr (stdout is the reply a script reads): the answers changed with the model unsaid
    out, err = capsys.readouterr()
    line = said("cli.sampling.model", **{"--temperature": demo_model.SAMPLING["temperature"],
                                         "--top-p": demo_model.SAMPLING["top_p"]})
    assert line in err and "generation_config.json" in line and "sampling" not in out


def test_typed_values_win_each_on_its_own(services, asked, capsys):
    assert chat(services, "builtin:danlu-tiny", "--temperature", "1.3") == 0
    assert (asked[-1]["temperature"], asked[-1]["top_p"]) == (1.3, demo_model.SAMPLING["top_p"])
    assert said("cli.sampling.model", **{"--top-p": demo_model.SAMPLING["top_p"]}) in capsys.readouterr().err
    assert chat(services, "builtin:danlu-tiny", "--top-p", "0.5") == 0
    assert (asked[-1]["temperature"], asked[-1]["top_p"]) == (demo_model.SAMPLING["temperature"], 0.5)
    assert said("cli.sampling.model", **{"--temperature": demo_model.SAMPLING["temperature"]}) in capsys.readouterr().err
    assert chat(services, "builtin:danlu-tiny", "--top-p", "0.5", "--temperature", "1") == 0
    assert "sampling" not in capsys.readouterr().err  # both typed: nothing to say


def test_a_model_without_a_recommendation_gets_danlus(services, asked, capsys):
    assert chat(services, "someone/some-model") == 0  # a hub id never downloaded: nothing to read, no network
    assert (asked[-1]["temperature"], asked[-1]["top_p"]) == (GenSettings.temperature, GenSettings.top_p)
    line = said("cli.sampling.danlu", **{"--temperature": GenSettings.temperature, "--top-p": GenSettings.top_p})
    assert line in capsys.readouterr().err and "Danlu" in line
