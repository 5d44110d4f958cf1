"""The preference template (issue 18): its sample pairs are reproducible from the committed script,
read as clean preference data, and carry the difference the template promises (chosen polite and
correct, rejected curt and wrong)."""
import json
import re

from core import presets
from core.data import check_file
from tests.conftest import REPO, load_script

DATA = REPO / "presets/templates/data/preference-keeper.jsonl"


def _generator():
    return load_script("tools/make_preference_data.py")


def test_the_committed_pairs_are_what_the_script_writes(tmp_path):
    gen = _generator()
    gen.OUT = tmp_path / "again.jsonl"
    gen.main()
    assert gen.OUT.read_bytes() == DATA.read_bytes()


def test_the_template_trains_dpo_on_clean_pairs_with_the_tiny_model():
    names = [t["name"] for t in presets.list_presets("template") if t["name"].startswith("preference")]
    assert names == ["preference-keeper"]
    t = presets.get("preference-keeper").data
    assert t["model"] == "danlu-tiny" and t["dataset_format"] == "preference" and t["settings"]["method"] == "dpo"
    rep = check_file(DATA)
    assert rep.ok and rep.format == "preference" and rep.usable >= 300 and not rep.warnings()


def test_every_pair_differs_the_same_way():
    gen = _generator()
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    for r in rows:
        assert r["chosen"].split(" ")[0] in " ".join(gen.KIND) and r["rejected"].startswith(tuple(gen.RUDE))
        fact = re.compile(r"(?:The|Heat) [^.]*\.")
        right, wrong = fact.search(r["chosen"]).group(), fact.search(r["rejected"]).group()
        assert right != wrong and right in gen.fact_sentences()  # the rejected answer states another fact
