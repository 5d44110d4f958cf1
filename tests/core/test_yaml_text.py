"""core/yaml_text.py: YAML a person wrote, read safely against what a person (or a stranger) can type."""
import pytest

from core.yaml_text import MAX_VALUES, TooBig, load_yaml_text

LAUGHS = "\n".join(['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
                   + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)])


def test_aliases_that_stand_for_millions_of_values_are_refused_while_reading():
    """Nine lines of nine aliases stand for 387 million values: SafeLoader shares the lists, but whatever
    quoted or checked the value walked them out (Load config in the browser held the server for good)."""
    with pytest.raises(TooBig):
        load_yaml_text(LAUGHS + "\nlora_rank: *a8\n")
    with pytest.raises(TooBig):  # a list inside itself never ends
        load_yaml_text("lora_rank: &a [*a]\n")


def test_aliases_as_people_use_them_still_read():
    text = "base: &b {lora_rank: 8, seed: 1}\nrun: {<<: *b, seed: 2}\nprompts: &p [a, b]\nagain: *p\n"
    assert load_yaml_text(text)["run"] == {"lora_rank": 8, "seed": 2}
    many = "xs: [" + ", ".join(["1"] * (MAX_VALUES // 2)) + "]\n"  # a long list written out is not an alias bomb
    assert len(load_yaml_text(many)["xs"]) == MAX_VALUES // 2
