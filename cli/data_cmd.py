"""`check-data` (XTuner's check-custom-dataset, for people) and `clean`.

    python app.py check-data FILE [--format F] [--map prompt=question] [--model M] [--json]
        exit 0 when training can use the file, 2 when not; problems print as
        FILE:LINE field: message — fix
    python app.py clean FILE OPS... --out OUT
        OPS are operation names, each followed by its key=value parameters, e.g.
        python app.py clean data.csv dedupe near=true trim replace find=colour with=color split val_fraction=0.1 --out clean.jsonl
"""
from __future__ import annotations

import json
from pathlib import Path

from cli.main import number
from core.config import FIELDS, FORMATS
from core.config_io import whole
from core.data import check_file, insight, run_ops
from core.data.clean import OPS
from core.data.issues import Issue
from core.errors import InputError, Problem
from core.messages import Msg
from core.paths import exists, is_dir, is_file


def register(sub):
    c = sub.add_parser("check-data", help="check a dataset file: every problem with its line and a fix")
    c.add_argument("file", help="CSV, TSV, JSON, JSONL, Parquet or XLSX")
    _common(c)
    c.add_argument("--json", action="store_true",
                   help="print {ok, format, rows, problems: [{line, field, message, hint}], warnings: [...]}")
    c.set_defaults(func=check_cmd)
    k = sub.add_parser("clean", help="clean a dataset file into a new JSONL file",
                       description="Operations: " + ", ".join(OPS) + ". Give parameters as key=value after an operation.")
    k.add_argument("file")
    k.add_argument("ops", nargs="+", metavar="OP", help="operation names, each followed by key=value parameters")
    k.add_argument("--out", required=True, help="the cleaned JSONL file to write (the input is never changed)")
    k.add_argument("--val-out", help="where split writes the validation rows (default OUT.validation.jsonl)")
    k.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    _common(k)
    k.set_defaults(func=clean_cmd)


def _common(p):
    p.add_argument("--format", default="auto", choices=FORMATS, help="dataset format (default: detect)")
    p.add_argument("--map", action="append", default=[], metavar="EXPECTED=YOURS",
                   help="column mapping, e.g. --map prompt=question --map completion=answer")
    p.add_argument("--model", help="count tokens with this model's tokenizer (preset, builtin:danlu-tiny, folder or hub id)")
    p.add_argument("--max-seq-length", type=number(int), default=1024, help="token limit to compare rows with (default 1024)")


def parse_map(items: list[str]) -> dict:
    out, problems = {}, []
    for item in items:
        key, eq, val = item.partition("=")
        if not eq or not key.strip() or not val.strip():
            problems.append(Problem("--map", Msg("cli.bad_map", item=repr(item)), Msg("cli.bad_map.hint")))
        else:
            out[key.strip()] = val.strip()
    if problems:
        raise InputError(problems=problems)
    return out


def _input(path: str) -> Path:
    p = Path(path)
    if not is_file(p):  # a name too long to exist is not found (core.paths), not an OSError
        said = Msg("any.file_not_found") if not exists(p) else Msg("cli.is_folder") if is_dir(p) else Msg("any.not_regular")
        raise InputError(problems=[Problem(path, said, Msg("any.check_path"))])
    return p


def check_cmd(args, services) -> int:
    limits = FIELDS["max_seq_length"].metadata  # the training setting's bounds, as clean's and the page's
    whole(args.max_seq_length, "--max-seq-length", limits["min"], limits["max"])
    path = _input(args.file)
    rep = check_file(path, args.format, parse_map(args.map) or None, display_name=args.file)
    tokens = None
    if args.model and rep.format and rep.usable:
        tokens = insight(path, rep.format, rep.column_map, model=args.model, max_seq_length=args.max_seq_length,
                         ws=services.workspace, report=rep)
        _token_warnings(rep, tokens)
    if args.json:
        out = rep.to_dict()
        if tokens is not None:
            out["tokens"] = {k: tokens[k] for k in ("tokenizer", "max_seq_length", "measured_rows", "sampled", "lengths",
                                                     "histogram", "over_max", "no_target", "nothing_to_learn", "text_chunks")}
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        for line in rep.human():
            print(line)
        if tokens is not None and tokens["lengths"]:
            ln = tokens["lengths"]
            print(f"tokens ({args.model}): median {ln['median']}, p95 {ln['p95']}, longest {ln['max']}; "
                  f"{tokens['over_max']:,} row(s) over max_seq_length {args.max_seq_length}")
        print(("OK: " if rep.ok else "NOT USABLE: ") + str(rep.summary()))
    return 0 if rep.ok else 2


def _token_warnings(rep, tokens: dict) -> None:
    if tokens.get("over_max"):
        rep.collector.add(Issue("too_long", Msg("cli.too_long", n=tokens["over_max"], limit=tokens["max_seq_length"]),
                                Msg("cli.too_long.hint")))
    if tokens.get("nothing_to_learn"):  # no row measured keeps an answer: training would stop
        rep.collector.add(Issue("no_target_any", Msg("cli.no_target_any", limit=tokens["max_seq_length"]),
                                Msg("cli.no_target.hint")))
    elif tokens.get("no_target"):
        rep.collector.add(Issue("no_target", Msg("cli.no_target", n=tokens["no_target"]), Msg("cli.no_target.hint")))


def parse_ops(tokens: list[str]) -> list[tuple[str, dict]]:
    """`dedupe near=true trim` -> [("dedupe", {"near": "true"}), ("trim", {})]."""
    ops: list[tuple[str, dict]] = []
    for tok in tokens:
        key, eq, val = tok.partition("=")
        if eq and key and not key.startswith("-"):
            if not ops:
                raise InputError(problems=[Problem(tok, Msg("cli.param_first"), Msg("cli.param_first.hint"))])
            ops[-1][1][key] = val
        else:
            ops.append((tok, {}))
    return ops


def check_out(flag: str, out: Path, src: Path, force: bool) -> Path:
    """A file a verb writes, checked before anything is written: never the input (it is never changed),
    never a folder, and a file that exists only with --force. A name too long for the file system raises
    here, naming it (cli.main says so)."""
    if out.resolve() == src.resolve():
        raise InputError(problems=[Problem(flag, Msg("cli.out_is_input"), Msg("cli.out_is_input.hint"))])
    if out.is_dir():
        raise InputError(problems=[Problem(flag, Msg("cli.out_folder", path=str(out)), Msg("cli.out_folder.hint"))])
    if out.exists() and not force:
        raise InputError(problems=[Problem(flag, Msg("cli.out_exists", path=str(out)), Msg("cli.other_name_or_force.hint"))])
    return out


def clean_cmd(args, services) -> int:
    src = _input(args.file)
    out = check_out("--out", Path(args.out), src, args.force)
    ops = parse_ops(args.ops)
    val_out = None
    if any(name == "split" for name, _ in ops):  # split writes a second file: the same rules
        val_out = check_out("--val-out", Path(args.val_out) if args.val_out else out.with_suffix(".validation.jsonl"),
                            src, args.force)
        if val_out.resolve() == out.resolve():
            raise InputError(problems=[Problem("--val-out", Msg("cli.val_is_out"), Msg("cli.val_is_out.hint"))])
    results = run_ops(src, ops, out, args.format, parse_map(args.map) or None,
                      val_out=val_out, model=args.model, max_seq_length=args.max_seq_length, ws=services.workspace)
    for r in results:
        print(f"{r['op']}: {r['summary']}")
    rep = check_file(out)
    print(f"wrote {out}: {rep.summary()}")
    if val_out is not None:
        print(f"validation rows: {val_out}")
    return 0
