"""Check one large JSONL file with several processes, each reading its own byte range.

The file is cut at line starts; each part is checked with local line numbers, then the parts'
collectors are merged in file order with the line and record offsets of the parts before them,
so the report reads exactly as a serial check would (same problems shown, same counts). Cross-part
duplicates are found by comparing the parts' row hashes. "forkserver" workers: safe inside a
threaded server, and they share one hash secret.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from core.data.check import DUP_HINT, DUP_MESSAGE
from core.data.issues import Collector


def _cut_points(path: Path, size: int, parts: int) -> list[int]:
    points = [0]
    with open(path, "rb") as f:
        for k in range(1, parts):
            f.seek(max(points[-1], size * k // parts))
            f.readline()  # move to the start of the next line
            points.append(min(f.tell(), size))
    points.append(size)
    return sorted(set(points))


def _part(path: str, sn, fmt: str, column_map: dict, cap: int, start: int, end: int, track: int):
    from core.data import check as C
    from core.data.readers import ReadStats, jsonl_bytes
    rep = C.Report("", path, sn.kind)
    checker = C._Checker(rep, fmt, column_map)
    checker.track_limit = track
    st = ReadStats()
    checker.run(Path(path), sn, cap, stream=jsonl_bytes(Path(path), sn, rep.collector, st, cap, start, end), stats=st)
    return rep.collector, st, rep.usable, rep.duplicates, checker.hashes, set(checker.prompts), _usage()


def _usage() -> dict:
    """This worker's CPU seconds and peak RSS (forkserver workers are not our children, so the
    parent's RUSAGE_CHILDREN does not see them; the benchmark reports these)."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "max_rss_mb": ru.ru_maxrss / 1024}


def _first_format(path: Path, sn, fmt: str, column_map: dict | None, cap: int, rep) -> tuple[str, dict] | None:
    """Decide the format (and any synonym mapping) from the first records, as the serial check does."""
    from core.data import check as C
    from core.data.readers import ReadStats, jsonl_bytes
    probe = C.Report("", str(path), sn.kind)
    checker = C._Checker(probe, fmt, column_map)
    for n, (line, record, value, _) in enumerate(jsonl_bytes(path, sn, Collector(), ReadStats(), cap)):
        if type(value) is dict:
            if checker._choose(value, line, record) is None:
                return None
            for issue in probe.collector.kept.get("column_guess", []):
                rep.collector.add(issue)
            return checker.fmt, checker.column_map
        if n > 1000:
            return None
    return None


def check_parallel(path: Path, sn, rep, fmt: str, column_map: dict | None, cap: int, workers: int) -> bool:
    """Fill `rep`; False when the file should be checked serially instead (format not found early)."""
    from core.data import check as C
    chosen = _first_format(path, sn, fmt, column_map, cap, rep)
    if chosen is None:
        return False
    fmt, cmap = chosen
    points = _cut_points(path, sn.size, workers)
    ranges = list(zip(points, points[1:]))
    track = C.DUP_TRACK_LIMIT // len(ranges)
    # forkserver: fresh workers (safe in a threaded server) that all share one hash secret, so
    # their row hashes can be compared; every hash is computed in a worker, never here.
    with ProcessPoolExecutor(len(ranges), mp_context=multiprocessing.get_context("forkserver")) as pool:
        futures = [pool.submit(_part, str(path), sn, fmt, cmap, cap, a, b, track) for a, b in ranges]
        results = [f.result() for f in futures]
        _merge(rep, results, pool, path, sn, cap, ranges)
    rep.format, rep.column_map = fmt, cmap
    return True


def _merge(rep, results, pool, path, sn, cap, ranges) -> None:
    from core.data import check as C
    lines = rows = blank = 0
    earlier: set = set()
    prompts: set = set()   # preference: prompt hashes of every part (distinct prompts, repeats across parts)
    dup_shown: list = []   # duplicates are merged by hand: a row can repeat one from an earlier part
    rep.workers = [r[-1] for r in results]
    for k, (collector, st, usable, dups, hashes, part_prompts, _) in enumerate(results):
        within = collector.kept.pop("duplicates", [])
        for issue in within:
            issue.line += lines
            issue.record += rows
        cross = hashes & earlier
        found = []
        if cross and len(dup_shown) < rep.collector.keep:
            found = pool.submit(_find_rows, path, sn, cap, ranges[k], cross, rep.collector.keep, lines, rows).result()
        dup_shown = sorted(dup_shown + within + found, key=lambda i: i.line)[:rep.collector.keep]
        rep.collector.merge(collector, line_offset=lines, record_offset=rows)
        if cross:
            rep.collector.count("duplicates", len(cross))
        rep.duplicates += dups + len(cross)
        earlier |= hashes
        again = len(part_prompts & prompts)
        if again:  # counted, not listed: the part's own check could not see the earlier part
            rep.collector.count("duplicate_prompt", again)
        prompts |= part_prompts
        lines += st.lines
        rows += st.rows
        blank += st.blank
        rep.usable += usable
        rep.stopped = rep.stopped or st.stopped
    if dup_shown:
        rep.collector.kept["duplicates"] = dup_shown
    rep.rows = rows
    rep.prompts = len(prompts)
    C.file_notes(rep.collector, C.ReadStats(blank=blank))


def _find_rows(path: Path, sn, cap: int, span: tuple[int, int], wanted: set, limit: int, line0: int, row0: int) -> list:
    """Lines of the first rows of one part that repeat a row of an earlier part (reread, rare).
    Runs in a worker: the hashes must come from the same hash secret as the parts'."""
    from core.data.issues import Issue
    from core.data.readers import ReadStats, jsonl_bytes
    out, seen = [], set()
    for line, record, _, raw in jsonl_bytes(path, sn, Collector(keep=0), ReadStats(), cap, span[0], span[1]):
        key = hash(raw.strip())
        if key in wanted and key not in seen:
            seen.add(key)
            out.append(Issue("duplicates", DUP_MESSAGE, DUP_HINT, "", line + line0, record + row0))
            if len(out) >= limit:
                break
    return out
