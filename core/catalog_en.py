"""The English catalog, core/catalog_en.yaml, loaded once: EN maps every message code to its
English words (the file's header says how codes and placeholders are written). Pure Python."""
from __future__ import annotations

from pathlib import Path

import yaml

CATALOG = Path(__file__).resolve().with_name("catalog_en.yaml")
# the C loader reads a catalog in milliseconds (the pure-Python one takes a tenth of a second)
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_catalog(path: Path) -> dict[str, str]:
    """One catalog file: code -> words."""
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=LOADER) or {}
    return {str(k): v for k, v in data.items()}


EN: dict[str, str] = load_catalog(CATALOG)
