"""Check a dataset file: every problem at once, each with line, field, value and fix.

    report = check_file("data.jsonl", fmt="auto", column_map=None)
    report.ok          # True when training can use the file
    report.to_dict()   # {ok, format, rows, usable_rows, problems: [...], warnings: [...], counts, ...}
    report.human()     # lines like "data.jsonl:12 messages[2].role: unknown role 'bot' — use system, user or assistant"

Streaming and bounded: records are checked one at a time and only counts plus the first 20
problems of each type are kept. Large JSONL files are split at line boundaries and checked by two
processes (one per core); the parts' line numbers are stitched back together.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.data.formats import FORMAT_NAMES, REQUIRED, Schema, detect_format, guess_column_map
from core.data.issues import TITLES, WARNING_CODES, Collector, Issue
from core.data.readers import MAX_RECORD_BYTES, ReadStats, read_records
from core.data.sniff import Sniffed, sniff
from core.messages import Msg, keep, said

DUP_TRACK_LIMIT = 2_000_000   # rows whose hashes are kept for the duplicate count (bounded memory)
FEW_ROWS = 10
DUP_MESSAGE = Msg("check.duplicate")
DUP_HINT = Msg("check.duplicate.hint")
PARALLEL_MIN_BYTES = 64 << 20


@dataclass
class Report:
    file: str                     # the name shown to the user
    path: str
    kind: str | None
    encoding: str = ""
    delimiter: str = ""
    format: str | None = None
    column_map: dict = field(default_factory=dict)
    rows: int = 0
    usable: int = 0
    duplicates: int = 0
    columns: list = field(default_factory=list)
    collector: Collector = field(default_factory=Collector)
    stopped: Msg | str = ""       # why reading stopped early
    examples: list | None = None  # filled when asked (load_examples)
    workers: list = field(default_factory=list)  # parallel checks: each worker's {cpu_s, max_rss_mb}
    prompts: int = 0              # preference: distinct prompts among the usable pairs

    @property
    def ok(self) -> bool:
        return self.rows > 0 and self.usable > 0 and self.collector.errors() == 0

    def problems(self) -> list[Issue]:
        return self.collector.shown(warnings=False)

    def warnings(self) -> list[Issue]:
        return self.collector.shown(warnings=True)

    def counts(self) -> dict:
        return {c: {"count": n, "title": TITLES.get(c, c), "warning": c in WARNING_CODES}
                for c, n in sorted(self.collector.counts.items(), key=lambda kv: -kv[1])}

    def to_dict(self) -> dict:
        def one(i: Issue) -> dict:
            return {"line": i.line, "record": i.record, "field": i.field, **said(i.msg, i.hint_msg),
                    "code": i.code, "value": i.value}
        errors = self.collector.errors()
        return {"ok": self.ok, "file": self.file, "format": self.format, "rows": self.rows, "usable_rows": self.usable,
                "kind": self.kind, "encoding": self.encoding, "delimiter": self.delimiter, "columns": self.columns,
                "column_map": self.column_map, "duplicates": self.duplicates,
                "problems": [one(i) for i in self.problems()], "warnings": [one(i) for i in self.warnings()],
                "problem_count": errors, "counts": self.counts(), **keep("stopped", self.stopped or None),
                **({"pairs": {"pairs": self.usable, "prompts": self.prompts}} if self.format == "preference" else {})}

    def summary(self) -> Msg:
        """One line: "data.jsonl: 1,000 rows (messages): 12 problems, 991 usable" or "..., all usable"."""
        fmt = f" ({self.format})" if self.format else ""
        errors = self.collector.errors()
        if self.format == "preference" and (errors or self.ok):
            if errors:
                return Msg("check.summary_pairs_problems", file=self.file, rows=self.rows, errors=errors, usable=self.usable)
            return Msg("check.summary_pairs_ok", file=self.file, rows=self.rows, prompts=self.prompts)
        if errors:
            return Msg("check.summary_problems", file=self.file, rows=self.rows, fmt=fmt, errors=errors, usable=self.usable)
        if not self.ok:
            return Msg("check.summary_none", file=self.file)
        return Msg("check.summary_ok", file=self.file, rows=self.rows, fmt=fmt)

    def human(self) -> list[str]:
        """`FILE:LINE field: message — fix` per problem, then per-type counts, then warnings."""
        out = [i.human(self.file) for i in self.problems()]
        for code, c in self.counts().items():
            kept = len(self.collector.kept.get(code, []))
            if not c["warning"] and c["count"] > kept:
                out.append(f"  ({c['title']}: first {kept} shown of {c['count']:,})")
        if self.stopped:
            out.append(f"  ({self.stopped})")
        for i in self.warnings():
            out.append(f"warning: {i.human(self.file)}")
        return out

    def error_problems(self):
        return [i.to_problem(self.file) for i in self.problems()]


def check_file(path: str | Path, fmt: str = "auto", column_map: dict | None = None, *, display_name: str | None = None,
               collect: bool = False, max_record_bytes: int = MAX_RECORD_BYTES, workers: int | None = None) -> Report:
    """Check a file. `collect=True` also keeps the usable examples (for training; not bounded)."""
    path = Path(path)
    name = display_name or path.name
    if fmt not in ("auto", *FORMAT_NAMES):
        rep = Report(name, str(path), None)
        rep.collector.add(Issue("unknown_format", Msg("data.unknown_format", value=repr(fmt)),
                                Msg("data.use_formats.hint", formats="auto, " + ", ".join(FORMAT_NAMES)), field="dataset_format"))
        return rep
    sn = sniff(path)
    rep = Report(name, str(path), sn.kind, sn.encoding, sn.delimiter if sn.kind in ("csv", "tsv") else "",
                 examples=[] if collect else None)
    for note in sn.notes:
        rep.collector.add(note)
    if sn.refusal is not None:
        rep.collector.add(sn.refusal)
        return rep
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    if (sn.kind == "jsonl" and not collect and n_workers > 1 and sn.size >= PARALLEL_MIN_BYTES
            and sn.encoding.startswith("utf-8") and not sn.cr_only):
        from core.data.parallel import check_parallel
        if check_parallel(path, sn, rep, fmt, column_map, max_record_bytes, min(n_workers, 8)):
            return finalize(rep)
    _Checker(rep, fmt, column_map).run(path, sn, max_record_bytes)
    return finalize(rep)


class _Checker:
    """One pass over a record stream: format detection, per-record schema checks, duplicates."""

    def __init__(self, rep: Report, fmt: str, column_map: dict | None):
        self.rep = rep
        self.fmt = None if fmt == "auto" else fmt
        self.column_map = dict(column_map or {})
        self.schema: Schema | None = None  # chosen at the first record (see _choose)
        self.hashes: set = set()
        self.track_limit = DUP_TRACK_LIMIT
        self.gave_up = False
        self.prompts: dict = {}  # preference: prompt hash -> line of its first pair (duplicate prompts)

    def run(self, path: Path, sn: Sniffed, cap: int, stream=None, stats: ReadStats | None = None) -> None:
        rep, col = self.rep, self.rep.collector
        st = stats if stats is not None else ReadStats()
        records = stream if stream is not None else read_records(path, sn, col, st, cap, self.column_map)
        collect = rep.examples is not None
        hashes, track = self.hashes, True
        # Python's own 64-bit hash: 5x cheaper than blake2b, and the same in every process forked
        # from one parent (parallel.py's forkserver workers), which is all the comparison needs.
        key_of = hash
        for line, record, value, raw in records:
            flagged, st.flag = st.flag, False
            if track:
                key = key_of(raw.strip() if raw is not None else _canonical(value))
                if key in hashes:
                    rep.duplicates += 1
                    col.report("duplicates", DUP_MESSAGE, DUP_HINT, line=line, record=record)
                else:
                    hashes.add(key)
                    track = len(hashes) < self.track_limit
            if type(value) is not dict:
                col.report("not_object", Msg("check.not_object", kind=_kind(value)), Msg("check.not_object.hint"),
                           line=line, record=record, value=value)
                continue
            schema = self.schema
            if schema is None:
                if self.gave_up:
                    continue
                schema = self._choose(value, line, record)
                if schema is None:
                    continue
            ex, issues = schema.check(value, collect)
            if issues:
                for code, fld, msg, hint, val in issues:
                    col.report(code, msg, hint, fld, line, record, val)
            if flagged:  # the reader already reported a problem in this record (duplicate key)
                ex = None
            if schema.last_prompt is not None and ex is not None:
                self._prompt_seen(schema.last_prompt, line, record)
            if ex is not None:
                rep.usable += 1
                if collect:
                    rep.examples.append(ex)
        self.finish(st, file_level=stream is None)

    def _prompt_seen(self, key: tuple, line, record) -> None:
        """Pairs sharing a prompt are fine for training (several pairs per question) but are often
        a copy-paste slip: a warning naming the first row with that prompt."""
        h = hash(key)
        first = self.prompts.get(h)
        if first is not None:
            self.rep.collector.report("duplicate_prompt", Msg("pref.duplicate_prompt", first=first),
                                      Msg("pref.duplicate_prompt.hint"), line=line, record=record)
        elif len(self.prompts) < self.track_limit:
            self.prompts[h] = line if line is not None else record

    def _choose(self, rec: dict, line, record) -> Schema | None:
        """Detect the format from the first record; map synonym columns (question/answer) when needed."""
        col = self.rep.collector
        fmt = self.fmt or detect_format(rec, self.column_map)
        if fmt is None or any(self.column_map.get(n, n) not in rec for n in REQUIRED[fmt]):
            guessed, mapping = guess_column_map(rec.keys(), self.fmt)
            if guessed is not None and mapping:
                fmt = guessed
                self.column_map = {**mapping, **self.column_map}
                col.report("column_guess", Msg("check.used_columns", mapping=[Msg("check.column_as", column=repr(v), name=k)
                                                                             for k, v in mapping.items()]),
                           Msg("check.used_columns.hint"), line=line, record=record)
        if fmt is None:
            self.gave_up = True
            col.report("unknown_format", Msg("check.unknown_format", fields=", ".join(map(repr, list(rec)[:8]))),
                       Msg("check.unknown_format.hint"), line=line, record=record)
            return None
        self.fmt = fmt
        self.schema = Schema(fmt, self.column_map)
        return self.schema

    def finish(self, st: ReadStats, file_level: bool = True) -> None:
        rep, col = self.rep, self.rep.collector
        rep.rows += st.rows
        rep.format = self.fmt
        rep.prompts += len(self.prompts)
        rep.column_map = dict(self.column_map)
        rep.columns = rep.columns or st.columns
        rep.stopped = rep.stopped or st.stopped
        if file_level:
            file_notes(col, st)


def file_notes(col: Collector, st: ReadStats) -> None:
    if st.blank:
        col.report("blank_lines", Msg("check.blank", n=st.blank), Msg("check.nothing_to_do.hint"))
    if st.coerced:
        col.report("coerced", Msg("check.coerced", n=st.coerced), Msg("check.coerced.hint"))


def finalize(rep: Report) -> Report:
    """File-level conclusions once every record has been seen."""
    col = rep.collector
    if rep.rows == 0 and not col.errors():
        col.report("empty", Msg("check.only_header") if rep.columns else Msg("check.no_rows"),
                   Msg("check.add_below_header.hint") if rep.columns else Msg("check.add_examples.hint"))
    elif rep.rows and rep.usable == 0 and not col.errors():
        col.report("empty", Msg("check.none_usable"), Msg("check.see_warnings.hint"))
    elif 0 < rep.usable < FEW_ROWS:
        col.report("few_rows", Msg("check.few_rows", n=rep.usable), Msg("check.few_rows.hint"))
    if rep.format and rep.columns:
        from core.data.formats import FIELDS
        used = {rep.column_map.get(n, n) for n in FIELDS[rep.format]}
        unused = [c for c in rep.columns if c not in used]
        if unused:
            col.report("ignored_columns", Msg("check.unused_columns", columns=", ".join(map(repr, unused[:10]))),
                       Msg("check.unused_columns.hint"))
    return rep


def _canonical(value) -> bytes:
    import json
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return repr(value).encode("utf-8", "surrogatepass")


def _kind(value) -> Msg:
    from core.data.formats import kind_of
    return kind_of(value)


def resolve_format(path: str | Path, fmt: str = "auto", column_map: dict | None = None) -> tuple[str | None, dict]:
    """The format and column mapping the checker would use for this file (from its first record)."""
    sn = sniff(path)
    fallback = (None if fmt == "auto" else fmt), dict(column_map or {})
    if sn.kind is None:
        return fallback
    probe = _Checker(Report("", str(path), sn.kind), fmt, column_map)
    for line, record, value, _ in read_records(path, sn, Collector(keep=0), ReadStats(), column_map=column_map):
        if type(value) is dict:
            probe._choose(value, line, record)
            return probe.fmt, probe.column_map
    return fallback


def iter_examples(path: str | Path, fmt: str, column_map: dict | None = None):
    """(line, record number, example) for every usable record, streaming. `fmt` must be resolved."""
    sn = sniff(path)
    if sn.kind is None or fmt not in FORMAT_NAMES:
        return
    schema = Schema(fmt, column_map)
    for line, record, value, _ in read_records(path, sn, Collector(keep=0), ReadStats(), column_map=column_map):
        if type(value) is dict:
            ex, _issues = schema.check(value, True)
            if ex is not None:
                yield line, record, ex


def peek_rows(path: str | Path, start: int = 1, count: int = 50) -> list[dict]:
    """Rows `start` .. `start + count - 1` (record numbers, 1-based) as they are in the file, for a
    table view: [{"row", "line", "record"}]. Unreadable rows are left out (check_file names them)."""
    sn = sniff(path)
    out: list[dict] = []
    if sn.kind is None or count <= 0:
        return out
    for line, record, value, _ in read_records(path, sn, Collector(keep=0), ReadStats()):
        if record >= start:
            out.append({"row": record, "line": line, "record": value})
            if len(out) >= count:
                break
    return out

