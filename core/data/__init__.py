"""Datasets: read any supported file, detect its format, turn every record into one training example.

The contract the training recipe relies on (the data studio builds on it):

    loaded = load_examples(path, fmt="auto", column_map=None)
    loaded.format    # "messages" | "sharegpt" | "alpaca" | "prompt_completion" | "text"
    loaded.examples  # [{"messages": [{"role", "content"}, ...]}]  or  [{"text": "..."}]

Problems raise core.errors.InputError listing every bad record (line, field, message, fix).
"""
from core.data.formats import FORMAT_NAMES, detect_format, to_example  # noqa: F401
from core.data.loader import LoadedData, load_examples  # noqa: F401
