"""`presets` (xtuner list-cfg) and `copy-preset` (xtuner copy-cfg)."""
from __future__ import annotations

import json
from pathlib import Path

from core import presets
from core.errors import InputError, Problem
from core.messages import Msg
from core.paths import is_dir


def register(sub):
    p = sub.add_parser("presets", help="list model, recipe and template presets")
    p.add_argument("--kind", choices=["model", "recipe", "template"], help="only this kind")
    p.add_argument("--json", action="store_true", help="print a JSON list of {name, kind, description}")
    p.set_defaults(func=list_cmd)
    c = sub.add_parser("copy-preset", help="write a complete config YAML from a preset")
    c.add_argument("name", help="a preset name (see `presets`)")
    c.add_argument("path", help="where to write the YAML")
    c.add_argument("--force", action="store_true", help="overwrite an existing file")
    c.set_defaults(func=copy_cmd)


def list_cmd(args, services) -> int:
    items = presets.list_presets(args.kind)
    if args.json:
        print(json.dumps(items, ensure_ascii=False, indent=2))
        return 0
    for kind in ("template", "recipe", "model"):
        rows = [i for i in items if i["kind"] == kind]
        if not rows:
            continue
        print(f"{kind}s:")
        width = max(len(r["name"]) for r in rows)
        for r in rows:
            desc = r["description"]
            print(f"  {r['name']:<{width}}  {desc[:100] + ('...' if len(desc) > 100 else '')}")
    return 0


def copy_cmd(args, services) -> int:
    dest = Path(args.path)
    if is_dir(dest):  # --force replaced nothing and said "cannot write in the folder <its parent>: Is a directory"
        raise InputError(problems=[Problem("path", Msg("cli.out_folder", path=str(dest)), Msg("cli.out_folder.hint"))])
    if dest.exists() and not args.force:
        raise InputError(problems=[Problem(str(dest), Msg("cli.exists"), Msg("cli.other_name_or_force.hint"))])
    presets.copy_preset(args.name, dest)
    print(f"wrote {dest}  (edit it, then: python app.py train {dest})")
    return 0
