"""Small builders for dataset fixtures; every test makes its own files in tmp_path."""
from __future__ import annotations

import json
from pathlib import Path


def chat(q: str = "What is tea?", a: str = "Leaves in hot water.", system: str | None = None) -> dict:
    msgs = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return {"messages": msgs}


def write_jsonl(path: Path, records, raw_lines=()) -> Path:
    """Records as JSONL, then any raw lines appended verbatim (for broken ones)."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records] + list(raw_lines)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_jsonl(path) -> list:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def codes(report) -> dict:
    return dict(report.collector.counts)


def problems(report) -> list:
    return report.problems()


def first(report, code: str):
    kept = report.collector.kept.get(code, [])
    assert kept, f"no {code} issue; have {codes(report)}"
    return kept[0]
