"""An answer's default sampling comes from the model's own generation_config.json (as real models ship their
recommended temperature and top_p), else Danlu's 0.7 / 0.9: at 0.7 the demo model, even trained on the demo
data, answered mostly garbled text. Read as plain JSON; what is out of range is Danlu's value again."""
from __future__ import annotations

import json

import pytest

from core.gen_settings import GenSettings, model_defaults
from core.model_sampling import default_sampling

DANLU = {"temperature": GenSettings.temperature, "top_p": GenSettings.top_p}


def folder(tmp_path, name, text):
    d = tmp_path / name
    d.mkdir()
    (d / "generation_config.json").write_text(text if isinstance(text, str) else json.dumps(text))
    return d


def test_the_models_recommended_temperature_and_top_p(tmp_path):
    d = folder(tmp_path, "m", {"do_sample": True, "temperature": 0.6, "top_p": 0.95})
    assert model_defaults([d]) == ({"temperature": 0.6, "top_p": 0.95}, True)
    only_t = folder(tmp_path, "t", {"temperature": 0.3})
    assert model_defaults([only_t]) == ({"temperature": 0.3, "top_p": DANLU["top_p"]}, True)


def test_do_sample_false_is_greedy(tmp_path):
    d = folder(tmp_path, "g", {"do_sample": False, "temperature": 0.9, "top_p": 0.8})
    assert model_defaults([d]) == ({"temperature": 0.0, "top_p": 0.8}, True)


@pytest.mark.parametrize("text", ['{"temperature": -1, "top_p": 0}', '{"temperature": 9, "top_p": 1.5}',
                                  '{"temperature": NaN, "top_p": Infinity}', '{"temperature": "0.2", "top_p": true}',
                                  '{"temperature": [0.2], "top_p": null}', "[0.2, 0.9]", "not json {", "",
                                  '{"bos_token_id": 1}'])
def test_junk_or_out_of_range_values_are_danlus(tmp_path, text):
    assert model_defaults([folder(tmp_path, "j", text)]) == (DANLU, False)


def test_no_file_or_no_folder_is_danlus(tmp_path, ws):
    (tmp_path / "empty").mkdir()
    assert model_defaults([None, tmp_path / "empty", tmp_path / "missing"]) == (DANLU, False)
    for name in ("no/such-model-anywhere", "nothing-by-this-name", str(tmp_path / "missing")):  # loading says why
        assert default_sampling(ws, name, None, origin="shell") == (DANLU, False)


def test_the_adapters_own_file_comes_before_the_base_models(tmp_path):
    base = folder(tmp_path, "base", {"temperature": 0.6})
    adapter = folder(tmp_path, "adapter", {"temperature": 0.1, "top_p": 0.5})
    assert model_defaults([adapter, base])[0] == {"temperature": 0.1, "top_p": 0.5}
    assert model_defaults([tmp_path / "no-adapter", base])[0]["temperature"] == 0.6


def test_the_demo_model_recommends_a_low_temperature(home):
    """The built-in demo's build writes its recommendation, and a name resolves to it without building."""
    from core import demo_model
    from core.workspace import Workspace
    values, from_model = default_sampling(Workspace.open(home), "builtin:danlu-tiny", None, origin="shell")
    assert from_model and values["temperature"] == demo_model.SAMPLING["temperature"] < GenSettings.temperature
