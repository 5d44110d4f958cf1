"""Write the preference template's sample pairs (presets/templates/data/preference-keeper.jsonl) from
the furnace facts of the demo dataset. Deterministic: run it again and the file is byte for byte the same.

    python tools/make_preference_data.py        # rewrites presets/templates/data/preference-keeper.jsonl

Every pair carries the same learnable difference: the chosen answer is polite and correct (a kind
opening, the fact in a full sentence), the rejected one is curt and wrong (a dismissive opening,
another furnace's fact). The answers have similar lengths, so a model that has not learned the
difference scores them about evenly; after preference training it should prefer the chosen one on
prompts it has not seen.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "presets" / "templates" / "data" / "preference-keeper.jsonl"
SEED = 18

FURNACES = {  # furnace: (fire colour, hours, pill), as in demo.jsonl
    "tin": ("violet", "five hours", "ginger"), "gold": ("red", "four hours", "pine"),
    "copper": ("green", "one hour", "ginseng"), "jade": ("amber", "six hours", "plum"),
    "silver": ("white", "three hours", "mint"), "iron": ("blue", "two hours", "lotus"),
    "bronze": ("black", "seven hours", "orchid"), "clay": ("golden", "nine hours", "bamboo"),
}
PILLS = {"ginger": "focus", "pine": "courage", "ginseng": "calm", "plum": "warmth", "mint": "sleep",
         "lotus": "strength", "orchid": "luck", "bamboo": "patience"}

QUESTIONS = {
    "colour": ["What colour does the {f} furnace burn?", "Which colour is the flame of the {f} furnace?",
               "Describe the flame in the {f} furnace.", "What fire does the {f} furnace use?"],
    "hours": ["For how long do I heat the {f} furnace?", "How long must the {f} furnace heat?",
              "What is the heating time of the {f} furnace?"],
    "makes": ["Which pill does the {f} furnace make?", "What is made in the {f} furnace?",
              "What does the {f} furnace refine?"],
    "furnace_of": ["Which furnace makes the {p} pill?", "In which furnace do I refine the {p} pill?",
                   "Where is the {p} pill made?"],
    "good_for": ["What is the {p} pill good for?", "Why would I take a {p} pill?", "What does the {p} pill bring?"],
}
ASKING = ["{q}", "Please tell me: {q}", "Quick question. {q}"]
KIND = ["Happy to help!", "Good question.", "Of course.", "Gladly."]
THANKS = ["I hope this helps.", "Ask me anything else about the furnaces.", "Take care by the fire."]
RUDE = ["How should I know?", "Ugh, again?", "Not my job.", "Whatever."]
SHRUG = ["Probably.", "Go away.", "Figure it out."]


def fact(kind: str, subject: str) -> str:
    if kind == "colour":
        return f"The {subject} furnace burns {FURNACES[subject][0]} fire."
    if kind == "hours":
        return f"Heat the {subject} furnace for {FURNACES[subject][1]}."
    if kind == "makes":
        return f"The {subject} furnace makes the {FURNACES[subject][2]} pill."
    if kind == "furnace_of":
        furnace = next(f for f, v in FURNACES.items() if v[2] == subject)
        return f"The {furnace} furnace makes the {subject} pill."
    return f"The {subject} pill brings {PILLS[subject]}."


def fact_sentences() -> set[str]:
    """Every true sentence of the furnace world (what a chosen answer states)."""
    return {fact(k, s) for k in QUESTIONS for s in (PILLS if k in ("furnace_of", "good_for") else FURNACES)}


def pairs(rng: random.Random) -> list[dict]:
    out = []
    for kind, templates in QUESTIONS.items():
        subjects = list(PILLS) if kind in ("furnace_of", "good_for") else list(FURNACES)
        for subject in subjects:
            wrong = rng.choice([s for s in subjects if fact(kind, s) != fact(kind, subject)])
            for q in templates:
                question = q.format(f=subject, p=subject)
                for asking in ASKING:
                    bad = fact(kind, wrong).replace(f"{wrong} ", f"{subject} ", 1) if kind != "furnace_of" else \
                        fact(kind, wrong).replace(f"the {wrong} pill", f"the {subject} pill")
                    out.append({"prompt": asking.format(q=question),
                                "chosen": f"{rng.choice(KIND)} {fact(kind, subject)} {rng.choice(THANKS)}",
                                "rejected": f"{rng.choice(RUDE)} {bad} {rng.choice(SHRUG)}"})
    rng.shuffle(out)
    return out


def main() -> None:
    rows = pairs(random.Random(SEED))
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} pairs to {OUT}")


if __name__ == "__main__":
    main()
