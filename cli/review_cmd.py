"""`review`: search a dataset file, scan it for sensitive data, write a redacted copy. The same core
functions as the GUI's Review tab (core/data/review.py, review_actions.py, the `redact` operation).

    python app.py review FILE --search "refund policy" [--regex] [--json]   -> {"matches": [{"line": L}]}
    python app.py review FILE --scan [--kinds email,phone] [--names "Anna,Bo"] [--json]
                                                                           -> {"rows": N, "hits": [{"line", "kind", "text"}]}
    python app.py review FILE --redact [--kinds a,b] [--names ...] --out OUT   a redacted JSONL copy
    python app.py review FILE --apply-marks marks.csv --out OUT             every row but those marked Drop

`line` is the first line of the record, as check-data counts it.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cli.data_cmd import _input, check_out, parse_map
from core.config import FORMATS
from core.data import pii
from core.data.clean import run_ops
from core.data.review import search_lines
from core.data.review_actions import scan_file
from core.errors import InputError, Problem
from core.messages import Msg


def register(sub):
    r = sub.add_parser("review", help="search a dataset, scan it for sensitive data, redact it",
                       description="Kinds of sensitive data: " + ", ".join(pii.KINDS) + " (and --names of your choice).")
    r.add_argument("file", help="CSV, TSV, JSON, JSONL, Parquet or XLSX")
    what = r.add_mutually_exclusive_group(required=True)
    what.add_argument("--search", metavar="TEXT", help='words and "quoted phrases" (all of them, any case)')
    what.add_argument("--scan", action="store_true", help="list sensitive data: e-mail, phone, card, IBAN, IP, credentials, keys")
    what.add_argument("--redact", action="store_true", help="write a copy with sensitive data replaced ([EMAIL], ...)")
    what.add_argument("--apply-marks", metavar="CSV", help="write the rows not marked Drop in a marks CSV (from the Review tab)")
    r.add_argument("--regex", action="store_true", help="--search TEXT is a regular expression")
    r.add_argument("--kinds", help=f"comma-separated kinds to scan or redact (default: all of {','.join(pii.KINDS)})")
    r.add_argument("--names", help="comma-separated names (or other words) to find and replace with [NAME]")
    r.add_argument("--out", help="the file to write (--redact, --apply-marks); the input is never changed")
    r.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    r.add_argument("--format", default="auto", choices=FORMATS, help="dataset format (default: detect)")
    r.add_argument("--map", action="append", default=[], metavar="EXPECTED=YOURS", help="column mapping, as check-data")
    r.add_argument("--json", action="store_true", help="print JSON (--search, --scan)")
    r.set_defaults(func=review_cmd)


def _kinds(text: str | None) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in (text or ",".join(pii.KINDS)).split(",") if k.strip())
    bad = [k for k in kinds if k not in pii.KINDS]
    if bad:
        raise InputError(problems=[Problem("--kinds", Msg("pii.unknown_kind", value=repr(k)), Msg("pii.use_kinds.hint", kinds=", ".join(pii.KINDS)))
                                   for k in bad])
    return kinds


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _out(args, src: Path) -> Path:
    if not args.out:
        raise InputError(problems=[Problem("--out", Msg("cli.out_needed"), Msg("cli.out_needed.hint"))])
    return check_out("--out", Path(args.out), src, args.force)


def review_cmd(args, services) -> int:
    src = _input(args.file)
    cmap = parse_map(args.map) or None
    if args.search is not None:
        lines = _search(src, args, cmap)
        if args.json:
            print(json.dumps({"matches": [{"line": n} for n in lines]}))
        else:
            for n in lines:
                print(f"{args.file}:{n}")
            print(f"{len(lines):,} matching row(s)")
        return 0
    kinds, names = _kinds(args.kinds), _names(args.names)
    if args.scan:
        return _scan(args, src, kinds, names, cmap)
    out = _out(args, src)
    if args.redact:
        results = run_ops(src, [("redact", {"kinds": ",".join(kinds), "names": ",".join(names)})], out, args.format, cmap,
                          ws=services.workspace, display_name=args.file)
        print(f"redact: {results[0]['summary']}")
        print(f"wrote {out}")
        return 0
    return _apply_marks(args, src, out, cmap)


# the search's problems as core says them for the Review tab name its box and its "regular expression"
# tick; here they name the flags
CLI_HINTS = {"review.bad_regex": "review.bad_regex.cli_hint", "review.slow_regex": "review.slow_regex.cli_hint"}


def _search(src: Path, args, cmap) -> list:
    try:
        return search_lines(src, args.search, args.regex, args.format, cmap)
    except InputError as e:
        raise InputError(problems=[dataclasses.replace(p, where="--search", hint_msg=Msg(CLI_HINTS[p.msg.code]))
                                   if p.msg.code in CLI_HINTS else p for p in e.problems], title=e.title) from None


def _scan(args, src: Path, kinds, names, cmap) -> int:
    found = scan_file(src, kinds + (("name",) if names else ()), names, cmap)
    if args.json:
        print(json.dumps({"rows": found["rows"], "hits": [{"line": h["line"], "kind": h["kind"], "text": h["text"]}
                                                          for h in found["hits"]]}, ensure_ascii=False))
        return 0
    for h in found["hits"]:
        print(f"{args.file}:{h['line'] if h['line'] is not None else 'record ' + str(h['row'])} {h['field']}: {h['kind']} {h['text']!r}")
    counts = ", ".join(f"{n:,} {k}" for k, n in sorted(found["counts"].items(), key=lambda kv: -kv[1]))
    print(f"{len(found['hits']):,} finding(s) in {found['rows']:,} rows" + (f": {counts}" if counts else ""))
    return 0


def _apply_marks(args, src: Path, out: Path, cmap) -> int:
    """Rows are found as the Review tab's import finds them: by number when the content still matches,
    else by content; a marked row that is not in FILE is refused (the CSV belongs to another version)."""
    import numpy as np
    from core.data.marks_csv import plan, read_csv
    from core.data.review import Desk
    from core.data.review_index import build_index
    marks = _input(args.apply_marks)  # not there, a folder, /dev/zero: said before anything is read
    idx = build_index(src, args.format, cmap)
    p = plan(Desk({}, idx, {}, np.zeros(idx.n, dtype=np.int8)), read_csv(marks))
    if p["problems"]:
        raise InputError(problems=p["problems"], title=Msg("cli.marks_mismatch", marks=args.apply_marks, file=args.file))
    drop = sorted(r for r, v in p["updates"].items() if v["mark"] == "drop")
    if not drop:
        raise InputError(problems=[Problem(args.apply_marks, Msg("cli.no_drop"), Msg("cli.no_drop.hint"))])
    results = run_ops(src, [("delete", {"rows": drop})], out, args.format, cmap, display_name=args.file)
    print(f"left out the rows marked Drop: {results[0]['summary']}")
    print(f"wrote {out}")
    return 0
