"""The sensitive-data scan (core/data/pii.py): checksums, placeholders, overlaps, and its measured
precision and recall on the labelled sample (bench/pii_eval.py)."""
from core.data import pii


def test_checksums_confirm_cards_and_ibans():
    assert pii.luhn_ok("4111111111111111") and not pii.luhn_ok("4111111111111112")
    assert pii.iban_ok("DE89 3704 0044 0532 0130 00") and not pii.iban_ok("DE89 3704 0044 0532 0130 01")
    assert not pii.iban_ok("DE89 3704 0044 0532 0130")  # a German IBAN has 22 characters
    kinds = lambda t: [(h.kind, h.text) for h in pii.scan_text(t)]  # noqa: E731
    assert kinds("card 4111 1111 1111 1111") == [("card", "4111 1111 1111 1111")]
    assert kinds("card 4111 1111 1111 1112") == []   # fails Luhn
    assert kinds("tracking 1234567890123456") == []  # no card issuer starts with 12


def test_the_more_specific_finding_wins_an_overlap():
    hits = pii.scan_text("db postgres://admin:hunter2@db.example.com/x and ann@example.com")
    assert [(h.kind, h.text) for h in hits] == [("url_credentials", "postgres://admin:hunter2@db.example.com/x"),
                                                ("email", "ann@example.com")]


def test_placeholders_replace_each_finding_and_keep_a_url_usable():
    text = "mail ann@example.com, call +44 20 7946 0958, db https://bob:pw123456@git.example.com/r"
    out = pii.redact_text(text, pii.scan_text(text))
    assert out == "mail [EMAIL], call [PHONE], db https://[CREDENTIALS]@git.example.com/r"


def test_names_of_the_users_choice_are_whole_words_in_any_case():
    hits = pii.scan_text("Annabel met ANNA and anna-lena", kinds=(), names=["Anna"])
    assert [h.text for h in hits] == ["ANNA", "anna"]


def test_records_are_scanned_and_redacted_in_every_text_value():
    rec = {"messages": [{"role": "user", "content": "I am at 10.0.0.5"}, {"role": "assistant", "content": "ok"}],
           "meta": {"owner": "x@y.org"}}
    found = pii.scan_record(rec)
    assert [(p, h.kind) for p, h in found] == [("messages[0].content", "ip"), ("meta.owner", "email")]
    assert pii.redact_record(rec, kinds=("email",)) == 1
    assert rec["meta"]["owner"] == "[EMAIL]" and rec["messages"][0]["content"] == "I am at 10.0.0.5"
    only = {("messages[0].content", 8, "ip")}
    assert pii.redact_record(rec, only=only) == 1 and rec["messages"][0]["content"] == "I am at [IP]"


def test_precision_and_recall_on_the_labelled_samples():
    """Floors under what bench/pii_eval.py measured, so a rule change that loses findings shows here."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import pii_eval
    tuned, _ = pii_eval.evaluate()
    held, _ = pii_eval.evaluate(pii_eval.SAMPLE.with_name("pii_heldout.jsonl"))
    for kind in pii.KINDS:
        assert tuned[kind]["recall"] >= 0.9 and tuned[kind]["precision"] >= 0.9, (kind, tuned[kind])
        assert held[kind]["recall"] >= 0.75 and held[kind]["precision"] >= 0.75, (kind, held[kind])
