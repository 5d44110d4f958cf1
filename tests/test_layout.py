"""The dependency rules of DESIGN.md, checked in fresh interpreters."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PURE_CORE = ["core.config", "core.presets", "core.jobs", "core.launcher", "core.progress", "core.errors",
             "core.workspace", "core.data", "core.models", "core.memory", "core.procs", "core.supervise",
             "core.export", "core.export_formats", "core.ollama", "core.model_card", "core.gguf_tools", "core.metrics",
             "core.runs", "core.evaluation", "core.chat", "core.demos", "cli.model_cmd"]  # the GUI process imports them all


@pytest.mark.parametrize("module", PURE_CORE)
def test_core_imports_neither_gradio_nor_torch(module):
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "bad = [m for m in ('gradio', 'torch', 'transformers', 'peft') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, f"{module} imports {r.stdout.strip()} at import time"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def python_files(*dirs):
    for d in dirs:
        yield from (REPO / d).rglob("*.py")


def test_only_webui_imports_gradio():
    for path in python_files("core", "cli"):
        assert not any(m.split(".")[0] == "gradio" for m in imports_of(path)), path


def test_recipes_never_import_jobs_launcher_or_webui():
    for path in python_files("core/recipes", "core/engine"):
        bad = {m for m in imports_of(path) if m.startswith(("core.jobs", "core.launcher", "core.supervise", "webui", "gradio"))}
        assert not bad, f"{path} imports {bad}"


def test_nothing_imports_the_recipes_except_recipes():
    for path in python_files("core", "cli", "webui"):
        if "recipes" in path.parts:
            continue
        assert not any(m.startswith("core.recipes") for m in imports_of(path)), path


def test_only_the_recipes_and_the_engine_import_the_engine():
    """core/engine may import torch at import time: plain core, the CLI and the page start its
    modules as processes (`python -m core.engine.chat_worker`), never import them."""
    for path in python_files("core", "cli", "webui"):
        if {"recipes", "engine"} & set(path.parts):
            continue
        assert not any(m.startswith("core.engine") for m in imports_of(path)), path


def test_recipes_folder_holds_entry_points_only():
    """Library code lives in core/engine; core/recipes keeps the scripts started by module name."""
    names = {p.name for p in (REPO / "core" / "recipes").glob("*.py")}
    assert names <= {"__init__.py", "train.py", "evaluate.py", "merge.py"}, names


def test_no_shell_true_or_os_system():
    for path in python_files("core", "cli", "webui", "bench") if (REPO / "bench").exists() else python_files("core", "cli", "webui"):
        text = path.read_text()
        assert "shell=True" not in text, path
        assert "os.system(" not in text and "os.popen(" not in text, path


def core_import_graph() -> dict[str, set[str]]:
    """module -> the core modules it imports (at the top or inside a function)."""
    mods = {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
            for p in python_files("core")}
    graph = {}
    for name, path in mods.items():
        deps = set()
        tree = ast.parse(path.read_text())
        facade = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"]
        for node in (n for top in tree.body if top not in facade for n in ast.walk(top)):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                subs = {f"{node.module}.{a.name}" for a in node.names} & mods.keys()
                deps |= subs | ({node.module} if len(subs) < len(node.names) else set())
        graph[name] = (deps & mods.keys()) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan)."""
    index, low, stack, out, counter = {}, {}, [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(group)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_core_modules():
    """config -> paths -> models -> presets -> config was one. Not counted: a module's __getattr__
    that re-exports a module split off it (core.config -> core.config_io), and lazy call-backs that
    stay inside one package (core.data's readers and its process pool; core.engine's speed and
    sharded)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    inside = ("core.data.", "core.engine.")
    crossing = [c for c in cycles(core_import_graph()) if not any(all(m.startswith(p) for m in c) for p in inside)]
    assert not crossing, crossing


def project_python_files() -> list[Path]:
    """Every Python file of the project (app.py, core, webui, cli, bench, tests): not the virtual
    environment or packages carried for the GPU machine."""
    out = [REPO / "app.py"]
    for d in ("core", "webui", "cli", "bench", "tests"):
        out += [p for p in (REPO / d).rglob("*.py") if "__pycache__" not in p.parts]
    return out


def test_no_file_over_450_lines_and_no_function_over_60():
    """The size rules of the house (issue 16): small files by concept, small functions."""
    long_files, long_functions = [], []
    for path in project_python_files():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO).as_posix()
        if text.count("\n") > 450:
            long_files.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long_functions.append(f"{rel}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long_files and not long_functions, "\n".join(long_files + long_functions)
