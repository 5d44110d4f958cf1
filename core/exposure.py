"""Who may reach a web server Danlu starts (the GUI, a shared chat demo): this computer only, unless a
login protects it. One rule for both; each server words its own refusal.

    auth = parse_auth("ann:long-pass", auth_file=None)     # ("ann", "long-pass"), None, or InputError
    check_exposure(host, share, auth, bind=Problem(...), share_link=Problem(...), title=Msg(...))

Pure Python.
"""
from __future__ import annotations

import ipaddress

from core.errors import InputError, Problem
from core.messages import Msg
from core.paths import exists, is_dir, is_file, read_at_most

MAX_AUTH_BYTES = 64 << 10  # one USER:PASS line is read from --auth-file


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str | None, auth_file: str | None = None) -> tuple[str, str] | None:
    """--auth USER:PASS, or the first line of --auth-file; None when neither is given."""
    text = auth
    if auth_file and exists(auth_file) and not is_dir(auth_file) and not is_file(auth_file):
        # a pipe: opening it waits for a writer, and the GUI or demo hung before it started, saying nothing
        raise InputError(problems=[Problem("--auth-file", Msg("any.not_regular_at", path=str(auth_file)), Msg("any.check_path"))])
    if auth_file:
        try:
            text = read_at_most(auth_file, MAX_AUTH_BYTES).decode("utf-8").strip().splitlines()[0]  # not /dev/zero whole
        except (OSError, IndexError, UnicodeDecodeError):
            raise InputError(problems=[Problem("--auth-file", Msg("cli.auth_file", path=str(auth_file)))])
    if text is None:
        return None
    user, sep, pw = text.partition(":")
    if not sep or not user or not pw:
        raise InputError(problems=[Problem("--auth", Msg("cli.auth_form"), Msg("cli.auth_form.hint"))])
    return user, pw


def check_exposure(host: str, share: bool, auth, *, bind: Problem, share_link: Problem, title: Msg) -> None:
    """Refuse, with every reason at once, a bind other than loopback or a public share link without a login."""
    problems = [bind] if not is_loopback(host) and not auth else []
    if share and not auth:
        problems.append(share_link)
    if problems:
        raise InputError(problems=problems, title=title)
