"""YAML a person wrote (a config file, a --set value, a box in the page, the workspace's settings.yaml),
read as yaml.safe_load reads it but safe against what a person can type: a whole number of more digits than
Python reads stays its text, and nesting past Python's limit is a YAML error like any other.

Its own module, below core.config_io and core.paths (both read such YAML; config_io imports paths).
Pure Python: imports neither torch nor gradio.
"""
from __future__ import annotations

import yaml

from core.errors import Problem
from core.messages import Msg


class TooDeep(yaml.YAMLError):
    """YAML nested past Python's limit ("[[[[..."): a syntax problem like any other, not a RecursionError."""


class TooBig(yaml.YAMLError):
    """Aliases (`*name`) that stand for more than MAX_VALUES values once written out (nine lines of nine
    aliases each stand for 387 million), or for a list inside itself: SafeLoader shares the objects, but
    everything after it (quoting a value in a message, checking it, writing it) walked them out and held the
    server's worker for good (a "billion laughs" file given to Load config)."""


MAX_VALUES = 100_000  # a config holds a few hundred values; a column map or probe list a few hundred more


class KeyTwice(yaml.constructor.ConstructorError):
    """A key written twice in one mapping: `key` as read, `first` and `line` the lines (from 1) of its first and
    second writing (the same line in a one-line mapping, `{a: 1, a: 2}`). Who reads a file says what to do."""

    def __init__(self, key, first_mark, second_mark):
        super().__init__("while reading a mapping", first_mark, f"found the key {key!r} twice", second_mark)
        self.key, self.first, self.line = key, first_mark.line + 1, second_mark.line + 1


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader, but a whole number of more digits than Python reads (4,300: its guard against slow
    conversions) stays the text it is: SafeLoader's int() raised ValueError from inside the YAML reader.
    A text setting keeps the digits; a number setting says they are out of its bounds (coerce)."""


def _int_or_text(loader, node):
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:  # only past Python's digit limit: YAML tags as int only what int() can read
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int_or_text)


def _mapping_once(loader, node):
    """A key written twice in one mapping is an error, as YAML says, with the line of the second: SafeLoader
    kept the last silently (`lora_rank: 8` ... `lora_rank: 64` trained with 64, saying nothing). Keys merged
    in with `<<: *anchor` may still be overridden."""
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise KeyTwice(key, seen[key], key_node.start_mark)
        seen[key] = key_node.start_mark
    return yaml.SafeLoader.construct_yaml_map(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping_once)


def load_yaml_text(text: str):
    """yaml.safe_load for text a person wrote (a file, a --set value, a box in the page)."""
    loader = _Loader(text)  # what yaml.safe_load does, with _Loader (a SafeLoader: plain data only)
    try:
        data = loader.get_single_data()
        _count_values(data)
        return data
    except RecursionError:  # nested past Python's limit in the text, or by aliases (a0: [x], a1: [*a0], ...)
        raise TooDeep(str(Msg("json.too_deep"))) from None
    finally:
        loader.dispose()


def _count_values(data, sizes: dict | None = None, inside: frozenset = frozenset()) -> int:
    """How many values `data` holds written out, each shared list or mapping counted once per place it is
    used (remembered by id, so counting takes no longer than reading); TooBig past MAX_VALUES or at a list
    that holds itself."""
    if not isinstance(data, (list, dict)):
        return 1
    sizes = {} if sizes is None else sizes
    key = id(data)
    if key in inside:
        raise TooBig(str(Msg("yaml.too_big", limit=MAX_VALUES)))
    if key not in sizes:
        items = [*data.keys(), *data.values()] if isinstance(data, dict) else data
        sizes[key] = 1 + sum(_count_values(v, sizes, inside | {key}) for v in items)
        if sizes[key] > MAX_VALUES:
            raise TooBig(str(Msg("yaml.too_big", limit=MAX_VALUES)))
    return sizes[key]


def key_twice_problem(e: KeyTwice, where: str) -> Problem:
    """A key written twice in the file `where` (a preset, the workspace's settings.yaml), on the line of its
    second writing: which key, where it was first, and to keep one line (one line, `{a: 1, a: 2}`: one value)."""
    key = e.key.strip() if isinstance(e.key, str) else str(e.key)
    if e.first == e.line:
        return Problem(f"{where}:{e.line}", Msg("config.key_twice_line", key=key), Msg("config.set_key_twice.hint", key=key))
    return Problem(f"{where}:{e.line}", Msg("config.key_twice", key=key, first=e.first), Msg("config.key_twice.hint", key=key))
