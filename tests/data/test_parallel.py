"""Two processes checking one JSONL give exactly the serial report: same lines, counts, duplicates."""
import json

from core.data import check as C
from core.data import parallel as P
from core.data import check_file
from tests.data.helpers import chat


def test_parallel_check_equals_serial(tmp_path, monkeypatch):
    real = P.check_parallel
    lines = []
    for i in range(3000):
        if i % 397 == 5:
            lines.append("{broken")
        elif i % 211 == 7:
            lines.append(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "bot", "content": "a"}]}))
        elif i % 500 == 9:
            lines.append("")
        elif i > 2000 and i % 300 == 0:
            lines.append(lines[i - 1900])  # duplicates of rows in the first part
        else:
            lines.append(json.dumps(chat(f"q{i}", f"a{i}")))
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(lines) + "\n")
    serial = check_file(p, workers=1).to_dict()
    monkeypatch.setattr(C, "PARALLEL_MIN_BYTES", 0)
    used = []
    monkeypatch.setattr(P, "check_parallel", lambda *a: used.append(real(*a)) or used[-1])
    parallel = check_file(p, workers=2).to_dict()
    assert used == [True]  # the file really was checked in parts
    assert serial["problem_count"] > 20 and serial["duplicates"] > 0
    assert parallel == serial


def test_parallel_check_of_pairs_counts_prompts_and_their_repeats_like_serial(tmp_path, monkeypatch):
    rows = [{"prompt": f"q{i % 1500}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3000)]
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    serial = check_file(p, workers=1)
    monkeypatch.setattr(C, "PARALLEL_MIN_BYTES", 0)
    real, used = P.check_parallel, []
    monkeypatch.setattr(P, "check_parallel", lambda *a: used.append(real(*a)) or used[-1])
    parallel = check_file(p, workers=2)
    assert used == [True]
    assert serial.to_dict()["pairs"] == parallel.to_dict()["pairs"] == {"pairs": 3000, "prompts": 1500}
    assert serial.counts()["duplicate_prompt"]["count"] == parallel.counts()["duplicate_prompt"]["count"] == 1500
    assert str(parallel.summary()) == str(serial.summary())
