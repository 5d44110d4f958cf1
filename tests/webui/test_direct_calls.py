"""The page's handlers called as a direct HTTP call can call them, with values the page never sends
(no language, an id that names nothing, a setting of another type): each answers in words, never
with a traceback (found by probing the live app's every event over HTTP)."""
from __future__ import annotations

from webui.tabs import dataset_tab


def test_a_handler_given_no_language_or_an_unknown_one_answers_in_english(gui):
    """The language radio may arrive empty (None) or as a code the page does not speak: a KeyError
    (and a traceback in the server's log) before."""
    for lang in (None, "", "fr", "xx-YY"):
        said = dataset_tab.check(gui, "", "auto", "", lang)[0]
        assert said == said.texts["en"] and "upload" in said.lower(), (lang, said)
    assert dataset_tab.check(gui, "", "auto", "", "es-ES")[0] == dataset_tab.check(gui, "", "auto", "", "es")[0]
