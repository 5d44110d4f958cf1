"""`gui` (the default when app.py gets no verb): serve the browser app.

Safe by default: binds 127.0.0.1. Binding any other address, or asking for a share link, is
refused unless a login is set (--auth USER:PASS or --auth-file FILE with one USER:PASS line).
"""
from __future__ import annotations

import os
import subprocess
import sys

from cli.main import number
from core import exposure, knobs, procs
from core.errors import InputError, Problem
from core.messages import Msg
from core.workspace import REPO_ROOT

DEFAULT_MAX_FILE_SIZE = "2gb"


def register(sub):
    p = sub.add_parser("gui", help="start the browser app (default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=number(int), help="port to serve on (default $DANLU_PORT, else 7860)")
    p.add_argument("--share", action="store_true", help="also create a public gradio.live link (needs --auth)")
    p.add_argument("--auth", help="require this login: USER:PASS")
    p.add_argument("--auth-file", help="file with one USER:PASS line")
    p.add_argument("--max-file-size", default=knobs.get(knobs.MAX_UPLOAD, DEFAULT_MAX_FILE_SIZE),
                   help="largest upload accepted, e.g. 2gb or 500mb")
    p.set_defaults(func=gui_cmd)


def check_exposure(host: str, share: bool, auth) -> None:
    """Refuse to expose the control panel without a login."""
    exposure.check_exposure(
        host, share, auth,
        bind=Problem("--host", Msg("cli.host_open", host=host), Msg("cli.host_open.hint")),
        share_link=Problem("--share", Msg("cli.share_public"), Msg("cli.add_auth.hint")),
        title=Msg("cli.no_login_title"))


def gui_port(args) -> int:
    """--port, else $DANLU_PORT, else 7860. A port no socket can bind (0, 99999, 7860.5) is refused naming where it
    came from: it reached bind() as an 'unexpected OverflowError', and a bad variable was blamed on --port."""
    where, port = ("--port", args.port) if args.port is not None else (knobs.PORT, knobs.number(knobs.PORT, 7860))
    if port != int(port) or not 1 <= port <= 65535:
        raise InputError(problems=[Problem(where, Msg("cli.port", port=int(port) if port == int(port) else port))])
    return int(port)


def prepare_demo_model(services) -> None:
    """Build the demo model in the background so the page answers at once."""
    from core import demo_model
    if demo_model.is_complete(services.workspace.models / demo_model.DEMO_NAME):
        return
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env[knobs.HOME] = str(services.workspace.root)
    log = open(services.workspace.root / "demo-model.log", "ab")
    # the same builder a job's supervisor runs; a file lock lets them race safely
    proc = subprocess.Popen([sys.executable, "-m", "core.demo_model", "--workspace", str(services.workspace.root)],
                            cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    procs.reap_when_done(proc)


def gui_cmd(args, services) -> int:
    auth = exposure.parse_auth(args.auth, args.auth_file)
    check_exposure(args.host, args.share, auth)
    port = gui_port(args)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from core.launcher import reconcile
    reconcile(services.workspace)  # reattach to jobs that ran while the GUI was down
    # answer the browser at once: importing Gradio and building the app takes seconds
    from webui.starting import StartingPage
    page = StartingPage(args.host, port)
    prepare_demo_model(services)
    try:
        from webui.app import launch
        launch(services, host=args.host, port=port, share=args.share, auth=auth, max_file_size=args.max_file_size,
               before_serving=page.close)
    finally:
        page.close()
    return 0
