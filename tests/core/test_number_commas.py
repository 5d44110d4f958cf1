"""Numbers written with a comma, and numbers quoted back in refusals (a newcomer walk in Japanese and Korean)."""
from __future__ import annotations

import pytest

from core.config import from_dict, load_config, validate
from core.config_io import coerce, whole
from core.errors import ConfigError, InputError
from webui import fields
from webui.i18n import CODES, say


def _only(problems, where):
    [p] = [p for p in problems if p.where == where]
    return p


def _says_decimal_comma(p, typed, example):
    assert p.msg.code == "config.decimal_comma" and p.msg.params["value"] == typed
    assert p.hint_msg.code == "config.decimal_comma.hint" and p.hint_msg.params["example"] == example
    for lang in CODES:  # each language names the value as typed and the point to write
        said = say(p.as_msg(), lang)
        assert typed in said and example in said, (lang, said)


def test_a_decimal_comma_is_refused_on_every_route_and_grouping_is_not_taken_for_one(tmp_path):
    """"0,0002" typed as the learning rate became 2 (the comma dropped as grouping): a comma that cannot
    group thousands is refused, naming the setting and saying to write the point, on every route."""
    from core.config_io import decimal_comma
    assert [decimal_comma(v) for v in ("1,000", "12,345,678", "-1,000.5", "abc,d", 0.5)] == [None] * 5
    assert [decimal_comma(v) for v in ("0,0002", "1,5", "0,1", "１，５")] == ["0.0002", "1.5", "0.1", "1.5"]
    _says_decimal_comma(coerce("learning_rate", "0,0002")[1], "0,0002", "0.0002")
    _, problems = fields.values_to_dict({"learning_rate": "0,0002", "num_epochs": "1,5"})  # the page / HTTP
    _says_decimal_comma(_only(problems, "learning_rate"), "0,0002", "0.0002")
    _says_decimal_comma(_only(problems, "num_epochs"), "1,5", "1.5")
    f = tmp_path / "c.yaml"
    f.write_text("learning_rate: 0,0002\n")  # Load config and a config file
    with pytest.raises(ConfigError) as e:
        load_config(f, check_files=False)
    _says_decimal_comma(_only(e.value.problems, "learning_rate"), "0,0002", "0.0002")
    f.write_text("lora_rank: 8\n")
    with pytest.raises(ConfigError) as e:  # --set
        load_config(f, ["learning_rate=0,1"], check_files=False)
    _says_decimal_comma(_only(e.value.problems, "learning_rate"), "0,1", "0.1")
    with pytest.raises(InputError) as e:  # a number box checked by its handler
        whole("1,5", "train.nproc", 1, 8)
    assert e.value.problems[0].msg.code == "any.decimal_comma" and e.value.problems[0].hint_msg.params["example"] == "1.5"


def test_a_whole_number_is_quoted_back_whole():
    """-3 typed as the epochs was quoted back "(現在は -3.0)" and its bounds as "1000.0"."""
    said = {p.where: p for p in validate(from_dict({"num_epochs": -3, "max_grad_norm": 2000}), check_files=False)}
    assert said["num_epochs"].msg.params["value"] == "-3" and said["num_epochs"].msg.params["n"] == "0.01"
    assert said["max_grad_norm"].msg.params["value"] == "2000" and said["max_grad_norm"].msg.params["n"] == "1000"
    ja = say(validate(from_dict({"num_epochs": 5000}), check_files=False)[0].as_msg(), "ja")
    assert "1000 以下" in ja and "現在は 5000）" in ja, ja
    lr = validate(from_dict({"learning_rate": 2.5}), check_files=False)[0]
    assert lr.msg.params["value"] == "2.5"  # a float's decimals stay


def test_a_whole_float_sent_to_a_number_box_is_quoted_back_whole():
    """A box's value sent as -3.0 (an HTTP call, a JavaScript number) was quoted back as -3.0."""
    with pytest.raises(InputError) as e:
        whole(-3.0, "train.nproc", 1, 8)
    assert e.value.problems[0].msg.params["value"] == "-3"
