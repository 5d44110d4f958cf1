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
    loader = LOADER(Path(path).read_text(encoding="utf-8"))  # what yaml.safe_load does, with the C loader
    try:
        data = loader.get_single_data() or {}
    finally:
        loader.dispose()
    return {str(k): v for k, v in data.items()}


EN: dict[str, str] = load_catalog(CATALOG)
