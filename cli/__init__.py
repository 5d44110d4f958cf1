"""Danlu's command line: one verb per GUI action, on the same code path (`python app.py VERB`)."""
