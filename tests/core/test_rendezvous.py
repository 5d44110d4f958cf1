"""Machine 0's address checked when a job on several machines is submitted (core.rendezvous): a name no
machine has, or a port another program listens on at machine 0, is refused at once. Before, the job
waited the whole join timeout (10 minutes by default) and then said the machines never joined."""
import socket
import time

import pytest

from core import launcher, rendezvous
from core.errors import InputError
from tests.jobs.util import demo_config


def submit(services, node_rank: int, master: str):
    spec = launcher.LaunchSpec(nnodes=2, node_rank=node_rank, master=master)
    return launcher.submit_train(services.workspace, demo_config(), spec, origin="shell")


def refusal(services, node_rank: int, master: str) -> list[str]:
    with pytest.raises(InputError) as e:
        submit(services, node_rank, master)
    assert e.value.title.code == "launch.options_title"
    assert services.store.list() == []  # no job was recorded
    return [f"{p.where}: {p.message} — {p.hint}" for p in e.value.problems]


def no_such_name(monkeypatch, looked: list):
    def getaddrinfo(host, *a, **k):  # what the name service answers for a name it does not know
        looked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(rendezvous.socket, "getaddrinfo", getaddrinfo)


def test_a_machine_0_name_no_machine_has_is_refused_at_once(services, monkeypatch):
    looked = []
    no_such_name(monkeypatch, looked)
    said = refusal(services, 1, "gpu-0l.cluster:29500")
    assert said == ["--master: no machine named gpu-0l.cluster can be found from here: the name service does not know "
                    "it — give machine 0's address (e.g. 10.0.0.1) or a name this machine can look up, and check it "
                    "for typos"]
    assert refusal(services, 0, "[fe80::1]:29500")[0].startswith("--master: no machine named fe80::1 ")
    assert looked == ["gpu-0l.cluster", "fe80::1"]


def test_a_name_the_real_name_service_knows_or_answers_late_is_not_refused(monkeypatch):
    assert not rendezvous.unknown_name("localhost") and not rendezvous.unknown_name("127.0.0.1")
    monkeypatch.setattr(rendezvous, "LOOKUP_WAIT_S", 0.2)
    monkeypatch.setattr(rendezvous.socket, "getaddrinfo", lambda *a, **k: time.sleep(3))
    t0 = time.monotonic()
    assert not rendezvous.unknown_name("slow.example")  # no definite answer: torchrun finds out itself
    assert time.monotonic() - t0 < 2.5
    def down(*a, **k):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    monkeypatch.setattr(rendezvous.socket, "getaddrinfo", down)
    assert not rendezvous.unknown_name("node0.cluster")


def test_machine_0_refuses_a_port_another_program_listens_on_and_takes_it_once_free(services):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        said = refusal(services, 0, f"127.0.0.1:{port}")
        assert said == [f"--master: another program already listens on port {port} on this machine, which is machine 0 "
                        "— choose a free port, the same on every machine (e.g. --master ADDR:29501), or stop that program"]
        assert rendezvous.master_problems(f"127.0.0.1:{port}", 1) == []  # machine 1 only connects to it
    assert rendezvous.master_problems(f"127.0.0.1:{port}", 0) == []


def test_machine_0_refuses_a_port_reserved_for_the_administrator(services, monkeypatch):
    """A port below 1024 without root: torchrun's store fails with "permission denied", which the job
    only reported after the join timeout with the generic reason. The tests run as root, where such a
    port is free, so the bind answers as it does for everyone else."""
    class Denied(socket.socket):
        def bind(self, address):
            raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(rendezvous.socket, "socket", Denied)
    said = refusal(services, 0, "127.0.0.1:80")
    assert said == ["--master: port 80 on this machine (machine 0) is reserved for the administrator: only a program "
                    "run as root may listen on a port below 1024 — choose a port from 1024 up, the same on every "
                    "machine (e.g. --master ADDR:29500)"]
    assert rendezvous.master_problems("127.0.0.1:80", 1) == []
