"""Machine 0's address (`--master HOST:PORT`) checked before a job on several machines starts: torchrun
only finds out at its rendezvous, and then after the whole join timeout (10 minutes by default). A
name that no machine here answers to, or a port that machine 0 cannot listen on (another program
listens there, or it is below 1024 and machine 0 does not run as root), is refused at once, naming
--master. Only definite answers refuse: a name service that is slow or down lets the job start
(torchrun's own failure is then explained by core.diagnose).
"""
from __future__ import annotations

import errno
import re
import socket
import threading

from core.errors import Problem
from core.messages import Msg

LOOKUP_WAIT_S = 10.0  # a name service that answers later than this neither refuses nor delays the job more
UNKNOWN = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
# a host name (labels of at most 63 letters, digits or hyphens, 253 characters in all), an IPv4
# address or a bracketed IPv6 one: anything else cannot be machine 0, and a job would only wait
HOST = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
                  r"|\[[0-9A-Fa-f:.]{2,45}\]")


def master_written(master: str | None) -> list[Problem]:
    """What is wrong with how --master is written (HOST:PORT), before anything is looked up."""
    if not master or ":" not in master:
        return [Problem("--master", Msg("launch.master"), Msg("launch.master.hint"))]
    host, _, port = master.rpartition(":")
    if not HOST.fullmatch(host) or not port.isdigit() or len(port) > 5 or not 1 <= int(port) <= 65535:
        return [Problem("--master", Msg("launch.bad_master", value=repr(master)))]
    return []


def master_problems(master: str, node_rank: int) -> list[Problem]:
    """What is wrong with a syntactically good ADDR:PORT for this machine (`node_rank`): every machine
    must find machine 0's name; machine 0 must be able to listen on the port."""
    host, _, port = master.rpartition(":")
    host = host.strip("[]")
    if unknown_name(host):
        return [Problem("--master", Msg("launch.unknown_host", host=host), Msg("launch.unknown_host.hint"))]
    code = port_refused(int(port)) if node_rank == 0 else None
    if code:
        return [Problem("--master", Msg(code, port=port), Msg(f"{code}.hint"))]
    return []


def unknown_name(host: str) -> bool:
    """True only when the name service said that no machine has this name."""
    said: list[int] = []

    def look():
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            said.append(e.errno)
        except (OSError, UnicodeError):  # not a name a lookup takes: the syntax check is elsewhere
            pass
    t = threading.Thread(target=look, daemon=True)
    t.start()
    t.join(LOOKUP_WAIT_S)
    return bool(said) and said[0] in UNKNOWN


def port_refused(port: int) -> str | None:
    """The message code when machine 0 cannot listen on `port` as torchrun's store would (every
    address): another program listens there, or the port is reserved for the administrator (below
    1024 without root). SO_REUSEADDR, as the store sets it: a port left in TIME_WAIT by an earlier
    job is free to use. Any other error is left for torchrun to report."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError as e:
            return {errno.EADDRINUSE: "launch.port_taken", errno.EACCES: "launch.port_denied"}.get(e.errno)
    return None
