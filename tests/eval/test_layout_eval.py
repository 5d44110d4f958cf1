"""The new plain-Python modules stay importable without torch or gradio (the GUI process imports them)."""
import subprocess
import sys

import pytest

from tests.conftest import REPO

MODULES = ["core.metrics", "core.runs", "core.evaluation", "core.export", "core.chat", "core.demos", "cli.model_cmd"]


@pytest.mark.parametrize("module", MODULES)
def test_imports_neither_torch_nor_gradio(module):
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "bad = [m for m in ('gradio', 'torch', 'transformers', 'peft') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, f"{module} imports {r.stdout.strip()} {r.stderr[-500:]}"
