"""Parse `python app.py VERB ...` and run the verb. Errors print in words with an exit code:
0 success, 1 the work failed (e.g. a training job failed), 2 the input was wrong.

Each verb lives in its own module with `register(subparsers)`; adding a verb means adding a module
to VERB_MODULES.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import math
import sys
from pathlib import Path

from core import knobs
from core.config import as_number, quoted
from core.errors import DanluError, Problem
from core.messages import Msg

VERB_MODULES = ["cli.presets_cmd", "cli.train_cmd", "cli.jobs_cmd", "cli.data_cmd", "cli.review_cmd", "cli.model_cmd", "cli.gui_cmd",
                "cli.cluster_cmd"]

EPILOG = """\
typical use:
  python app.py presets                          list models, recipes and templates
  python app.py copy-preset demo my.yaml         write a complete config to edit
  python app.py check-data my.jsonl              check a dataset file
  python app.py review my.jsonl --scan           find e-mail addresses, phone numbers, keys, ...
  python app.py train my.yaml --nproc 2          train (2 processes / GPUs)
  python app.py train my.yaml --slurm --nodes 2  train on a Slurm cluster (see: python app.py cluster)
  python app.py jobs list                        see all jobs
The workspace is $DANLU_HOME (default ~/.danlu)."""


def number(t):
    """An argparse `type=` for a whole (int) or decimal (float) option: text that is no such number (abc, 1.5,
    nan, inf) or one too large to hold (5,000 digits, 1e999) is refused in Danlu's words, the value quoted
    short, exit code 2 as argparse's own ("invalid int value: '999...'" echoed it whole); the verb checks bounds."""
    def read(text: str):
        n = as_number(text, t)
        if n is None:
            raise argparse.ArgumentTypeError(str(Msg("cli.not_number", type=Msg("type." + t.__name__), value=repr(text))))
        if abs(n) == math.inf:  # not isinf(): an int of 400 digits is no float
            raise argparse.ArgumentTypeError(str(Msg("cli.huge_number", value=quoted(text))))
        return n
    read.__name__ = t.__name__  # what argparse calls the type, should it ever name it
    return read


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python app.py", description="Danlu: fine-tune language models (QLoRA).",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", help="workspace folder (default: $DANLU_HOME or ~/.danlu)")
    sub = ap.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # a verb module not written yet
            raise
        mod.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    from core.services import Services
    ap = build_parser()
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        ap.print_help()
        return 2
    try:
        services = Services.create(args.home)
        return int(args.func(args, services) or 0)
    except DanluError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            # a path typed here (an --out file, a preset's copy) longer than the file system keeps: only the
            # file system knows its limit, and says so when the file is made; the path is quoted short
            print(f"error: {Problem('', Msg('cli.name_too_long', path=str(e.filename)), Msg('cli.name_too_long.hint'))}",
                  file=sys.stderr)
            return 2
        if e.filename is None or knobs.get(knobs.DEBUG):
            return _unexpected(e)
        return _path_refused(e)
    except Exception as e:
        return _unexpected(e)


def _path_refused(e: OSError) -> int:
    """The system refused a path typed here: an --out or a copy in a folder that cannot be written (/sys, a
    read-only disk, a file where a folder should be), a file that may not be read, a full disk. Said with the
    system's reason; a file written as a temporary name first (core.workspace.atomic_write_bytes) is named by
    its folder."""
    path = Path(str(e.filename))
    reason = e.strerror or type(e).__name__
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        said = Msg("cli.cannot_write_in", path=str(path.parent), reason=reason)
    else:
        said = Msg("cli.os_refused", path=str(path), reason=reason)
    print(f"error: {Problem('', said, Msg('cli.os_refused.hint'))}", file=sys.stderr)
    return 1 if e.errno in (errno.ENOSPC, errno.EDQUOT) else 2


def _unexpected(e: Exception) -> int:
    """A bug in Danlu: one line, and the traceback on request."""
    if knobs.get(knobs.DEBUG):
        raise e
    print(f"error: unexpected {type(e).__name__}: {e}\n(set DANLU_DEBUG=1 to see the traceback)", file=sys.stderr)
    return 1
