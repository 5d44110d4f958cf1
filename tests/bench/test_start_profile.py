"""bench/start_profile.py reads Python's own import profile: nesting from the indent, both times."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import start_profile  # noqa: E402

SAMPLE = """import time: self [us] | cumulative | imported package
import time:       100 |        100 |     b.inner
import time:       300 |        400 |   b
import time:      2000 |       2500 | a
import time:        50 |         50 |       too.deep
"""


def test_the_profile_keeps_depth_and_orders_by_cumulative_time():
    rows = start_profile.parse_importtime(SAMPLE, top=10)
    assert [(r["module"], r["depth"], r["cumulative_s"]) for r in rows] == [("a", 0, 0.0025), ("b", 1, 0.0004),
                                                                            ("b.inner", 2, 0.0001)]
    assert rows[0]["self_s"] == 0.002


def test_a_real_profile_names_what_was_imported():
    rows = start_profile.import_profile(top=50, code="import json")
    assert "json" in [r["module"] for r in rows] and all(r["cumulative_s"] >= r["self_s"] for r in rows)
