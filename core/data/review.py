"""The review desk's questions: which rows match, in what order, how many, how far the review is.

    desk = open_desk(ws, ds_id)                       # the current version's index and marks
    sel = select(desk, Filters(search='"two tablets" dose', problem="empty_text", mark="unreviewed"))
    sel                                               # positions into desk.index, in the chosen order
    counts(desk, sel)                                 # {matched, total, keep, drop, fix, reviewed, share, ...}
    search_lines(path, "refund")                      # the CLI's `review FILE --search`: [line, ...]

Search: words and "quoted phrases", all of them, in any case; or a regular expression (regex=True).
Filters: problem kind ("" all, "none", "any" or a code from core/data/issues.py), review mark ("" all,
"unreviewed", "reviewed", keep, drop, fix), language code, duplicate group ("" all, "any" or a group
number), token range. Sort: position, longest, shortest, duplicates (groups together).
Every filter is a vectorised comparison over numpy arrays; a search is one pass of C-level string
tests, remembered for the next filter change (bench/review_bench.py measures it on 100,000 rows).
"""
from __future__ import annotations

import os
import re
import select as io_select  # `select` is this module's own (rows of the desk)
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from core.config import as_number, whole
from core.data.marks import MARKS, read_marks, summary_of
from core.data.regex_scan import regex_rows
from core.data.review_index import Index, build_index, cached_index
from core.errors import InputError, Problem
from core.messages import Msg

MARK_CODE = {m: i + 1 for i, m in enumerate(MARKS)}   # 0: not reviewed
SORTS = ("position", "longest", "shortest", "duplicates")
MAX_TOKENS = 1_000_000_000  # a token filter's bounds: a row (8 MiB at most) holds far fewer
TERMS = re.compile(r'"([^"]+)"|(\S+)')


@dataclass(frozen=True)
class Filters:
    search: str = ""
    regex: bool = False
    problem: str = ""
    mark: str = ""
    lang: str = ""
    dup: str = ""
    min_tokens: int | None = None
    max_tokens: int | None = None
    sort: str = "position"


@dataclass
class Desk:
    info: dict              # the dataset's info (core.data.store)
    index: Index
    marks: dict             # {record number: {"mark", "note"}}
    codes: np.ndarray       # per position: 0 none, else MARK_CODE


_MARKS_CACHE: OrderedDict = OrderedDict()
_SEARCH_CACHE: OrderedDict = OrderedDict()
_LOCK = threading.Lock()


def open_desk(ws, ds_id: str) -> Desk:
    """The current version of a stored dataset, ready for questions (index built once per version)."""
    from core.data.store import _dir, _read, get_dataset, version_file
    info = get_dataset(ws, ds_id)
    d = _dir(ws, ds_id)
    m = _read(d)
    cur = m["versions"][-1]
    version_file(d, m, len(m["versions"]) - 1)  # the index may be remembered: the file it was read from must still be there
    idx = cached_index(info["current_path"], info["current_sha256"], info["format"], info["column_map"] or None)
    marks = read_marks(d, cur)
    key = (idx.uid, cur.get("marks_sha256", ""))
    with _LOCK:
        codes = _MARKS_CACHE.get(key)
    if codes is None:
        codes = mark_codes(idx, marks)
        with _LOCK:
            _MARKS_CACHE[key] = codes
            while len(_MARKS_CACHE) > 4:
                _MARKS_CACHE.popitem(last=False)
    return Desk(info, idx, marks, codes)


def mark_codes(idx: Index, marks: dict) -> np.ndarray:
    codes = np.zeros(idx.n, dtype=np.int8)
    for row, v in marks.items():
        i = idx.position(row)
        if i is not None and v.get("mark") in MARK_CODE:
            codes[i] = MARK_CODE[v["mark"]]
    return codes


def search_mask(idx: Index, text: str, regex: bool = False) -> np.ndarray | None:
    """Rows whose text matches (None: no search). Remembered per index and query, and so is a regular
    expression stopped for its time: the page keeps the filters it used, so every later Next, mark or Undo
    searched again, 15 s each, for the same refusal."""
    text = (text or "").strip()
    if not text:
        return None
    key = (idx.uid, text, bool(regex))
    with _LOCK:
        hit = _SEARCH_CACHE.get(key)
    if isinstance(hit, list):
        raise InputError(problems=hit)
    if hit is not None:
        return hit
    if regex:
        try:
            mask = bounded_regex_mask(idx, text)
        except InputError as e:
            if e.problems and e.problems[0].msg.code == "review.slow_regex":
                with _LOCK:
                    _SEARCH_CACHE[key] = e.problems
            raise
    else:
        mask = np.ones(idx.n, dtype=bool)
        for phrase, word in TERMS.findall(text):
            term = (phrase or word).casefold()
            mask &= np.fromiter((term in t for t in idx.folded), dtype=bool, count=idx.n)
    with _LOCK:
        _SEARCH_CACHE[key] = mask
        while len(_SEARCH_CACHE) > 16:
            _SEARCH_CACHE.popitem(last=False)
    return mask


SELECTIVE = 0.1  # fixed text in at most this share of the rows: trying only those rows is quick
REGEX_BUDGET_S = 15.0  # a regular expression search's time: past it the pattern is refused


def bounded_regex_mask(idx: Index, text: str, budget_s: float | None = None) -> np.ndarray:
    """_regex_mask in a forked copy of this process, stopped past `budget_s` (REGEX_BUDGET_S): a pattern
    that backtracks without end on some row ("(\\w+\\w+)+\\1!" on a row of 40 letters) is refused in
    words instead of searching for ever. Python's `re` holds the interpreter lock until it returns, so in
    the GUI's server one such search stopped every page (no answer to anything, for good). The fork
    shares the index as it is (nothing sent) and answers one bit per row; the search is the same `re`
    search. The fork costs about 0.1 s in a 1.5 GB server process, once per search text (the mask is
    remembered); the `regex` module's timeout instead made backreference searches 2-7x slower. Where
    there is no fork the search runs here, unbounded."""
    budget = REGEX_BUDGET_S if budget_s is None else budget_s
    try:
        re.compile(text)  # a malformed pattern is said as one, here, before any fork
    except re.error:
        return _regex_mask(idx, text)
    if not hasattr(os, "fork"):
        return _regex_mask(idx, text)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: search, answer, leave at once (no atexit handlers, no flushing of the parent's files)
        code = 1
        try:
            os.close(r)
            out = memoryview(np.packbits(_regex_mask(idx, text)).tobytes())
            while out:
                out = out[os.write(w, out):]
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline, answered = [], time.monotonic() + budget, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not io_select.select([r], [], [], left)[0]:
                raise InputError(problems=[Problem("search", Msg("review.slow_regex", seconds=round(budget)),
                                                   Msg("review.slow_regex.hint"))])
            chunk = os.read(r, 1 << 20)
            if not chunk:
                answered = True
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        if not answered:  # stopped (or anything else went wrong here): the copy must not search on
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    bits = np.frombuffer(b"".join(chunks), dtype=np.uint8)
    if len(bits) != (idx.n + 7) // 8:  # the copy died (out of memory?): search here
        return _regex_mask(idx, text)
    return np.unpackbits(bits, count=idx.n).astype(bool)


def _regex_mask(idx: Index, text: str) -> np.ndarray:
    """Case-insensitive regular expression search. A lower-case pattern runs on the case-folded text
    (5x faster than IGNORECASE); only rows holding the pattern's required literal text (if it has
    one: "dose" in \\bdose\\b) are tried at all, which keeps patterns without a fixed start fast;
    a pattern without fixed text goes through core.data.regex_scan (one Hyperscan pass)."""
    plain = re.sub(r"\\.", "", text)   # escapes such as \\D or \\S are not capital letters
    folded = plain.lower() == plain
    try:
        pattern = re.compile(text, re.MULTILINE | (0 if folded else re.IGNORECASE))
    except re.error as e:
        raise InputError(problems=[Problem("search", Msg("review.bad_regex", error=str(e)), Msg("review.bad_regex.hint"))]) from None
    search, texts = pattern.search, idx.folded if folded else idx.texts
    literal = required_literal(text).casefold()
    # fixed text that few rows hold (not " " in \d{4} \d{4}, not "the"): try only those rows
    candidates = np.flatnonzero(np.fromiter((literal in t for t in idx.folded), dtype=bool, count=idx.n)) \
        if len(literal) >= 3 else None
    if candidates is None or len(candidates) > SELECTIVE * idx.n:
        fast = regex_rows(text, pattern, texts, idx.uid) if folded else None  # Hyperscan (core.data.regex_scan)
        if fast is not None:
            return fast
    if candidates is None:
        return np.fromiter((search(t) is not None for t in texts), dtype=bool, count=idx.n)
    mask = np.zeros(idx.n, dtype=bool)
    for i in candidates:
        mask[i] = search(texts[i]) is not None
    return mask


def required_literal(text: str) -> str:
    """The longest run of plain characters every match of the pattern contains ("" when unsure)."""
    try:
        import re._parser as sre  # the standard library's own regex parser
        parsed = sre.parse(text)
    except Exception:  # noqa: BLE001 - an odd pattern: no shortcut, the plain search still runs
        return ""
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return ""
    best, run = "", []
    for op, arg in list(parsed) + [(None, None)]:
        if op is sre.LITERAL:
            run.append(chr(arg))
            continue
        if op is sre.AT:  # word boundary, ^, $: zero width, the characters on both sides are still next to each other
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    return best


def select(desk_or_index, f: Filters, codes: np.ndarray | None = None) -> np.ndarray:
    """Positions of the rows that pass every filter, in the chosen order."""
    idx = desk_or_index.index if isinstance(desk_or_index, Desk) else desk_or_index
    lo, hi = token_bound(f.min_tokens, "min_tokens"), token_bound(f.max_tokens, "max_tokens")  # refused before any work
    texts(f)
    if codes is None:
        codes = desk_or_index.codes if isinstance(desk_or_index, Desk) else np.zeros(idx.n, dtype=np.int8)
    mask = np.ones(idx.n, dtype=bool)
    found = search_mask(idx, f.search, f.regex)
    if found is not None:
        mask &= found
    if f.problem == "none":
        mask &= idx.problems == 0
    elif f.problem == "any":
        mask &= idx.problems != 0
    elif f.problem:
        bit = idx.codes.index(f.problem) if f.problem in idx.codes else None
        mask &= (idx.problems & (1 << bit)) != 0 if bit is not None else False
    if f.mark == "unreviewed":
        mask &= codes == 0
    elif f.mark == "reviewed":
        mask &= codes != 0
    elif f.mark:
        mask &= codes == MARK_CODE.get(f.mark, -1)
    if f.lang:
        mask &= idx.lang == (idx.langs.index(f.lang) if f.lang in idx.langs else -1)
    if f.dup == "any":
        mask &= idx.dup > 0
    elif f.dup:
        group = _int(f.dup, "duplicate group")
        mask &= idx.dup == group if abs(group) < 2 ** 62 else False  # no such group (numpy holds no such number)
    if lo is not None:
        mask &= idx.tokens >= lo
    if hi is not None:
        mask &= idx.tokens <= hi
    pos = np.flatnonzero(mask)
    if f.sort == "longest":
        pos = pos[np.argsort(-idx.tokens[pos], kind="stable")]
    elif f.sort == "shortest":
        pos = pos[np.argsort(idx.tokens[pos], kind="stable")]
    elif f.sort == "duplicates":
        pos = pos[np.argsort(np.where(idx.dup[pos] > 0, idx.dup[pos], np.iinfo(np.int64).max), kind="stable")]
    elif f.sort not in SORTS:
        raise InputError(problems=[Problem("sort", Msg("review.bad_sort", value=repr(f.sort)), Msg("review.use.hint", choices=", ".join(SORTS)))])
    return pos


def texts(f: Filters) -> None:
    """The filters that are words must be text (None: none): the page's hidden box of filters, sent by a
    direct HTTP call, may hold a list or a number there (an AttributeError or TypeError, a 500, before)."""
    bad = [(k, getattr(f, k)) for k in ("search", "problem", "mark", "lang", "dup", "sort")
           if getattr(f, k) is not None and not isinstance(getattr(f, k), str)]
    if bad:
        raise InputError(problems=[Problem(k, Msg("review.not_text", value=repr(v)[:80]), Msg("review.not_text.hint"))
                                   for k, v in bad])


def _int(v, what: str) -> int:
    n = as_number(v, int)  # 5,000 digits: infinity, a group no row is in
    if n is None:
        raise InputError(problems=[Problem(what, Msg("review.not_number", value=repr(v)), Msg("review.whole_number.hint"))])
    return n


def token_bound(v, what: str) -> int | None:
    """A token-length filter (None: none), or InputError in words: from the page, what its box sent (a
    direct HTTP call: NaN, 1e999, text, -1, 5,000 digits); a row holds fewer tokens than MAX_TOKENS."""
    return whole(v, what, 0, MAX_TOKENS)


def counts(desk: Desk, sel: np.ndarray) -> dict:
    """How many rows match, and the review's progress over the whole version."""
    progress = summary_of(desk.marks, desk.index.n)
    m = desk.codes[sel]
    return {"matched": int(len(sel)), **progress, "unreadable": desk.index.unreadable,
            "matched_by_mark": {mk: int((m == MARK_CODE[mk]).sum()) for mk in MARKS}}


def choices(desk: Desk) -> dict:
    """What the filters can offer for this version: {problems: {code: n}, langs: {code: n}, dup_groups: n}."""
    idx = desk.index
    problems = {c: int(((idx.problems >> i) & 1).sum()) for i, c in enumerate(idx.codes)}
    langs = {c: int((idx.lang == i).sum()) for i, c in enumerate(idx.langs)}
    return {"problems": problems, "langs": langs, "dup_groups": int(idx.dup.max()) if idx.n else 0,
            "dup_rows": int((idx.dup > 0).sum())}


def search_lines(path, text: str, regex: bool = False, fmt: str = "auto", column_map: dict | None = None) -> list:
    """The first line of every matching row of a file (None for formats without lines: Parquet)."""
    idx = build_index(path, fmt, column_map)
    return [None if idx.lines[i] < 0 else int(idx.lines[i]) for i in select(idx, Filters(search=text, regex=regex))]
