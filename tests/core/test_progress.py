"""core/progress.py's clock arithmetic: metrics lines carry "wall" (1 ms) and "time" (10 ms)."""
from core.progress import seconds_between


def test_seconds_between_uses_the_millisecond_clock_when_both_lines_have_it():
    assert abs(seconds_between(dict(time=0.5, wall=100.000), dict(time=0.5, wall=100.004)) - 0.004) < 1e-9
    assert seconds_between(dict(time=0.5), dict(time=1.75, wall=3.0)) == 1.25  # an older line: "time" for both
    assert seconds_between(dict(time=0.5, wall=100.0), dict(time=0.5, wall=100.0)) == 0  # inside one tick
