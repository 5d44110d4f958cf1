"""A regular expression over many rows at once, fast enough for a filter change (issue 21: 300 ms
on 100,000 rows).

Python's `re` tries a pattern without fixed text at every character of every row (0.4-0.8 s for
100,000 rows here). Hyperscan (Intel's multi-pattern engine, `hyperscan` on PyPI, its library in
the wheel) scans all the rows joined by newlines in one pass at gigabytes per second. A pattern it
supports exactly is matched in its exact mode; one it cannot (backreferences, lookarounds) in its
prefilter mode, which may report rows that do not match, never misses one, and every row it
reports is confirmed with Python's own `re`. Either way the result is `re`'s (tests compare them).

    rows = regex_rows(pattern, compiled, texts, key)   # np.ndarray of bools, or None: use `re` itself

None (the caller searches every row with `re`) when Hyperscan is not installed or cannot compile
the pattern; when the pattern uses what the two dialects read differently (SAFE_ESCAPES below; \\A
and \\Z, since one joined buffer has only one start and end; `{,n}`, which Hyperscan takes for
text; case-insensitive matching, whose Unicode folding differs; \\s where a row holds one of the
separators \\x1c-\\x1f or \\x85, which only Python counts as space); when a row cannot be encoded;
when a timed sample says `re` over every row is quick anyway (a pattern found early in most rows);
or when matches are so many that reporting them would take longer than `re`.
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict

import numpy as np

SAMPLE = 2000          # rows timed with `re` first
RE_QUICK_S = 0.1       # `re` over every row projected under this: no Hyperscan
MAX_EVENTS = 100_000   # match events before a scan gives up (each costs a Python call)
_JOINED: OrderedDict = OrderedDict()   # key -> (buffer, row end offsets, odd spaces); a few indexes' worth
_LOCK = threading.Lock()
SAFE_ESCAPES = set("dDwWsSbBtnrfvx0123456789")   # letters both dialects read alike; \\. \\( ... are safe too
ODD_SPACES = (b"\x1c", b"\x1d", b"\x1e", b"\x1f", b"\xc2\x85")


def regex_rows(text: str, pattern: re.Pattern, texts: list[str], key, quick_s: float = RE_QUICK_S) -> np.ndarray | None:
    """Which of `texts` `pattern` (compiled from `text`) finds a match in; None: search them with `re`."""
    if not _available():
        return None
    import hyperscan
    if not _same_in_both(text, pattern) or _re_is_quick(pattern, texts, quick_s):
        return None
    joined = _joined_or_none(texts, key)
    if joined is None:
        return None
    buf, ends, odd_spaces = joined
    if odd_spaces and "\\s" in text:
        return None
    flags = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_UCP | hyperscan.HS_FLAG_MULTILINE
    if pattern.flags & re.DOTALL:
        flags |= hyperscan.HS_FLAG_DOTALL
    db, exact = _compile(hyperscan, text, flags)
    if db is None:
        return None
    events: list[int] = []

    def on_match(_id, _start, end, _flags, _ctx):
        events.append(end)
        if len(events) > MAX_EVENTS:
            return True  # stop the scan: matches are everywhere, `re` is quicker

    try:
        db.scan(buf, match_event_handler=on_match)
    except hyperscan.ScanTerminated:
        return None
    mask = np.zeros(len(texts), dtype=bool)
    if events:
        # an event ends at byte `end` (exclusive); the row is the first whose end offset lies beyond it
        rows = np.unique(np.searchsorted(ends, np.asarray(events, dtype=np.int64) - 1, side="right"))
        rows = rows[rows < len(texts)]
        if exact:
            mask[rows] = True
        else:
            search = pattern.search
            for i in rows:
                mask[i] = search(texts[i]) is not None
    return mask


def _compile(hyperscan, text: str, flags: int):
    """(database, exact): Hyperscan's exact mode when it takes the pattern (its matches are then
    re's, the dialect differences being ruled out by _same_in_both), else its prefilter mode."""
    for extra, exact in ((0, True), (hyperscan.HS_FLAG_PREFILTER, False)):
        db = hyperscan.Database()
        try:
            db.compile(expressions=[text.encode("utf-8")], flags=[flags | extra])
        except Exception:  # noqa: BLE001 - a pattern this mode cannot take
            continue
        return db, exact
    return None, False


def _same_in_both(text: str, pattern: re.Pattern) -> bool:
    escapes = re.findall(r"\\(.)", text)
    return (not pattern.flags & re.IGNORECASE and "{," not in text
            and all(not c.isalnum() or c in SAFE_ESCAPES for c in escapes))


def _re_is_quick(pattern: re.Pattern, texts: list[str], quick_s: float) -> bool:
    """Whether `re` over every row would take under quick_s seconds, judged from a timed sample (a pattern
    found early in most rows is; one that must read most of each row, or rarely matches, is not)."""
    step = max(1, len(texts) // SAMPLE)
    sample = texts[::step]
    if not sample:
        return True
    t0 = time.perf_counter()
    for t in sample:
        pattern.search(t)
    return (time.perf_counter() - t0) * len(texts) / len(sample) < quick_s


def joined(texts: list[str], key) -> None:
    """Prepare the joined buffer of these rows now (when an index is built), not at the first search."""
    if _available():
        _joined_or_none(texts, key)


def _available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


def _joined_or_none(texts: list[str], key):
    """The rows as one UTF-8 buffer, each followed by a newline, each row's end offset (after its
    newline) and whether any row holds a space only Python's \\s knows. Remembered per index; None
    when a row cannot be encoded (a lone surrogate)."""
    with _LOCK:
        if key in _JOINED:
            _JOINED.move_to_end(key)
            return _JOINED[key]
    try:
        parts = [t.encode("utf-8") for t in texts]
    except UnicodeEncodeError:
        joined = None
    else:
        ends = np.cumsum(np.fromiter((len(p) + 1 for p in parts), dtype=np.int64, count=len(parts)))
        buf = b"\n".join(parts) + b"\n"
        joined = (buf, ends, any(c in buf for c in ODD_SPACES))
    with _LOCK:
        _JOINED[key] = joined
        while len(_JOINED) > 4:
            _JOINED.popitem(last=False)
    return joined
