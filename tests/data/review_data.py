"""A generated dataset for the review desk's tests and benchmark: conversations in five languages,
with near duplicates, rows with problems and sensitive data at known rows (deterministic per seed).

    rows = make_rows(5000)                 # list of {"messages": [...]} records
    write_rows(path, rows)                 # JSONL, one record per line (line N = row N)
"""
from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS = ["tea", "insulin", "a refund", "the warranty", "shipping", "a password reset", "the copper furnace", "invoices",
          "blood pressure", "a lease", "overtime pay", "the return policy"]
QUESTIONS = {
    "en": ["What should I know about {t}?", "Can you explain {t} in simple words?", "How do I handle {t} for a customer?"],
    "de": ["Was muss ich über {t} wissen und wie ist das?", "Kannst du mir {t} erklären, die Frage ist nicht einfach?"],
    "fr": ["Que faut-il savoir sur {t} pour le client ?", "Est-ce que vous pouvez expliquer {t} dans un mot ?"],
    "es": ["¿Qué es lo que hay que saber de {t} para el cliente?", "¿Me puedes explicar {t} con un ejemplo?"],
    "zh": ["关于{t}我需要知道什么？", "请用简单的话解释一下{t}。"],
}
ANSWERS = {
    "en": "Here is what matters about {t}: check the record, follow the policy, and write down what you did. "
          "If the customer is unsure, explain the next step and the time it takes.",
    "de": "Bei {t} ist das Wichtigste: die Unterlagen prüfen und die Regeln befolgen, und es ist gut, das zu notieren.",
    "fr": "Pour {t}, le plus important est de vérifier le dossier et de suivre la règle, puis de noter ce que vous avez fait.",
    "es": "Para {t}, lo más importante es revisar el registro y seguir la norma, y anotar lo que se hizo.",
    "zh": "关于{t}，最重要的是核对记录、遵守规定，并记下你做了什么。",
}
SECRETS = [("email", "Write to {name}@example.com for help."), ("phone", "Call +44 20 7946 {n:04d} today."),
           ("card", "The card 4111 1111 1111 1111 was charged."), ("ip", "The login came from 203.0.113.{m}."),
           ("api_key", "Use the key AKIAIOSFODNN7EXAMPLE in the config.")]


def make_rows(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    langs = ["en"] * 6 + ["de", "fr", "es", "zh"]
    rows: list[dict] = []
    for i in range(n):
        lang = langs[i % len(langs)]
        topic = TOPICS[rnd.randrange(len(TOPICS))]
        q = rnd.choice(QUESTIONS[lang]).format(t=topic) + f" (case {i + 1})"
        a = ANSWERS[lang].format(t=topic) + " " + " ".join(rnd.choice(["Thanks.", "Done.", "Noted."]) for _ in range(rnd.randrange(1, 40)))
        if i % 50 == 7:  # sensitive data in every 50th row, from row 8
            kind, text = SECRETS[(i // 50) % len(SECRETS)]
            a += " " + text.format(name=f"user{i}", n=i % 10000, m=i % 250)
        msgs = ([{"role": "system", "content": "You are a careful assistant."}] if i % 3 == 0 else []) + \
            [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if i % 97 == 5:     # a problem: the answer is missing
            msgs[-1]["content"] = ""
        rows.append({"messages": msgs})
        if i % 40 == 20 and i + 1 < n:  # a near duplicate: the same words, other case and punctuation
            pass
    for i in range(20, n - 1, 40):
        src = rows[i]["messages"]
        rows[i + 1] = {"messages": [dict(m, content=m["content"].upper().replace(".", "!")) for m in src]}
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path
