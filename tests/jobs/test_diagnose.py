"""Failure reasons in words: which rank, what happened, what to do, and the end of that rank's log."""
import json
import time

import pytest

from core import diagnose

SUMMARY = """\
[default0]:step 3/10 | loss 2.1
[default1]:step 3/10 | loss 2.1
[default1]:about to die
[default0]:RuntimeError: [gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4242
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
=======================================================
core.recipes.train FAILED
-------------------------------------------------------
Failures:
[1]:
  time      : 2026-11-27_19:49:49
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 13335)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 13335
-------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-27_19:49:49
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 13334)
  error_file: <N/A>
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
=======================================================
"""


def write_rank_error(run_dir, rank, reason, message="m", hint="h", t=None):
    (run_dir / "errors").mkdir(exist_ok=True)
    (run_dir / "errors" / f"rank{rank}.json").write_text(json.dumps(
        dict(rank=rank, reason=reason, message=message, hint=hint, time=t or time.time())))


def test_torchrun_summary_is_parsed():
    fails = {f.rank: f for f in diagnose.torchrun_failures(SUMMARY)}
    assert fails[1].exitcode == -9 and not fails[1].root
    assert fails[0].exitcode == 1 and fails[0].root


def test_a_rank_killed_from_outside_is_named_even_when_torchrun_blames_its_peer(tmp_path):
    """torchrun orders failures by whole seconds and named rank 0 here; rank 0 only lost its peer."""
    write_rank_error(tmp_path, 0, "peer_lost", "Another training process stopped")
    info = diagnose.explain(tmp_path, 1, SUMMARY, nproc=2)
    assert info["reason"] == "killed" and info["rank"] == 1
    assert "Rank 1" in info["message"] and "memory" in info["message"]
    assert "about to die" in info["log_tail"] and "Connection closed" not in info["log_tail"]


def test_the_rank_seen_vanishing_first_wins(tmp_path):
    info = diagnose.explain(tmp_path, 1, SUMMARY, first_gone=[1], nproc=2)
    assert info["rank"] == 1 and info["reason"] == "killed"


def test_a_ranks_own_error_beats_a_peers_consequence(tmp_path):
    write_rank_error(tmp_path, 0, "peer_lost", t=100.0)
    write_rank_error(tmp_path, 1, "cuda_oom", "The GPU ran out of memory.", "Lower 'Batch size per device' from 8 to 4.", t=101.0)
    text = SUMMARY.replace("exitcode  : -9 (pid: 13335)  (SIGKILL)", "exitcode  : 1 (pid: 13335)")
    info = diagnose.explain(tmp_path, 1, text, first_gone=[0, 1], nproc=2)
    assert info["reason"] == "cuda_oom" and info["rank"] == 1
    assert info["message"].startswith("Rank 1: The GPU ran out of memory")
    assert "from 8 to 4" in info["hint"]


def test_crashed_rank_message_names_it(tmp_path):
    write_rank_error(tmp_path, 1, "crashed", "The training process stopped with an error: RuntimeError: boom")
    info = diagnose.explain(tmp_path, 1, SUMMARY, nproc=2)
    assert info["reason"] == "crashed" and info["message"].startswith("Rank 1 crashed.")


@pytest.mark.parametrize("line, reason", [
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "cuda_oom"),
    ("OSError: [Errno 28] No space left on device", "disk_full"),
    ("[rank0]:[E] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9) ran for 600000 ms", "nccl_timeout"),
])
def test_reasons_found_in_the_log_when_no_rank_wrote_one(tmp_path, line, reason):
    text = f"[default0]:{line}\n" + SUMMARY.replace("exitcode  : -9 (pid: 13335)  (SIGKILL)", "exitcode  : 1 (pid: 13335)")
    info = diagnose.explain(tmp_path, 1, text, nproc=2)
    assert info["reason"] == reason
    assert info["hint"]


def test_the_launcher_killed_before_any_summary(tmp_path):
    info = diagnose.explain(tmp_path, -9, "[default0]:step 1\n")
    assert info["reason"] == "killed" and "launcher was killed" in info["message"]


@pytest.mark.parametrize("rc, reason, words", [(-9, "killed", "killed"), (-11, "crashed", "SIGSEGV"),
                                               (3, "crashed", "3")])
def test_a_one_process_job_without_torchrun_is_its_own_rank(tmp_path, rc, reason, words):
    """No torchrun summary: the process's own exit code is rank 0's, never "the launcher was killed"."""
    info = diagnose.explain(tmp_path, rc, "step 1/10 | loss 2.0\n", direct=True)
    assert info["reason"] == reason and info["rank"] == 0
    assert words in info["message"] and "launcher" not in info["message"]
    assert "step 1/10" in info["log_tail"]


def test_a_one_process_job_that_wrote_its_error_says_that(tmp_path):
    write_rank_error(tmp_path, 0, "out_of_memory", message="CUDA ran out of memory")
    info = diagnose.explain(tmp_path, 1, "Traceback ...\n", direct=True)
    assert info["reason"] == "out_of_memory" and info["message"] == "CUDA ran out of memory"


def test_rank_tail_keeps_only_that_ranks_lines():
    text = "".join(f"[default{r}]:line {i} of rank {r}\n" for i in range(100) for r in (0, 1))
    tail = diagnose.rank_tail(text, 1)
    assert "rank 0" not in tail and tail.endswith("line 99 of rank 1")
    assert len(tail.splitlines()) == diagnose.TAIL_LINES


def test_read_from_reads_only_this_attempt(tmp_path):
    log = tmp_path / "stdout.log"
    log.write_text("Failures:\n  rank      : 1 (local_rank: 1)\n  exitcode  : -9\nold attempt\n")
    offset = log.stat().st_size
    with open(log, "a") as f:
        f.write("new attempt\n")
    assert diagnose.read_from(log, offset) == "new attempt\n"
    assert diagnose.torchrun_failures(diagnose.read_from(log, offset)) == []


@pytest.fixture(scope="module")
def common():
    from core.engine import common
    return common


class TestClassifyInsideARank:
    """core.engine.common.classify turns a rank's exception into reason + words + hint."""

    def test_peer_lost_is_a_consequence(self, common):
        info = common.classify(RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer"))
        assert info["reason"] == "peer_lost"

    def test_collective_timeout(self, common):
        info = common.classify(RuntimeError("[gloo] Timed out waiting 600000ms for recv operation to complete"))
        assert info["reason"] == "nccl_timeout"

    def test_cuda_oom_gives_a_concrete_fix(self, common):
        import torch

        from core.config import TrainConfig
        cfg = TrainConfig(dataset="x", micro_batch_size=8, max_seq_length=2048, gradient_checkpointing=False)
        info = common.classify(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB"), cfg)
        assert info["reason"] == "cuda_oom"
        assert "from 8 to 4" in info["hint"] and "from 2048 to 1024" in info["hint"] and "checkpointing" in info["hint"]

    def test_cuda_oom_never_asks_for_what_is_already_at_its_floor(self, common):
        """A batch of 1 is not lowered 'from 1 to 1' (measured on an H200: an 8B run at 96k tokens per
        row in 24 GiB said so): the length comes first, then what is still on; at 1 × 512 the words
        say that even that does not fit."""
        import torch

        from core.config import TrainConfig
        oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 112 MiB")
        long = common.classify(oom, TrainConfig(dataset="x", micro_batch_size=1, max_seq_length=98304, memory_plan="lowest"))
        assert "from 1 to 1" not in long["hint"] and "Batch size" not in long["hint"]
        assert long["hint"].startswith("Lower 'Maximum length' (max_seq_length) from 98304 to 49152")
        assert "Memory plan" not in long["hint"]  # already lowest
        auto = common.classify(oom, TrainConfig(dataset="x", micro_batch_size=1, max_seq_length=98304))
        assert "'Memory plan' to lowest" in auto["hint"]
        short = common.classify(oom, TrainConfig(dataset="x", micro_batch_size=1, max_seq_length=256, memory_plan="lowest"))
        assert "256 tokens" in short["hint"] and "smaller model" in short["hint"] and "Lower" not in short["hint"]

    def test_diverged_disk_full_and_data_error(self, common):
        from core.errors import InputError, Problem
        from core.messages import Msg
        assert common.classify(common.Diverged(Msg("fail.diverged", n=3, step=9), hint=Msg("fail.diverged.hint")))["reason"] == "diverged"
        from core.messages import size_msg
        disk = common.classify(common.DiskFull(Msg("fail.low_disk", free=size_msg(3 << 20), path="/runs/x", need=size_msg(9 << 20))))
        assert disk["reason"] == "disk_full" and "Only 3 MB" in disk["message"]
        assert disk["message_msg"]["code"] == "fail.disk_full_saving_detail"  # the page renders the code
        assert common.classify(OSError(28, "No space left on device"))["reason"] == "disk_full"
        data = common.classify(InputError(problems=[Problem("dataset", Msg("load.no_usable"))]))
        assert data["reason"] == "data_error" and "the file has no usable records" in data["message"]


def test_a_rank_and_the_supervisor_say_the_same_words_for_the_same_failure(tmp_path, common):
    """One table (core.failures): a collective timeout raised in a rank and the same words found in a
    log without any rank record are one reason with one message and hint."""
    text = "RuntimeError: [gloo] Timed out waiting 600000ms for recv operation to complete"
    in_rank = common.classify(RuntimeError(text))
    from_log = diagnose.explain(tmp_path, 1, f"[default0]:{text}\n")
    assert in_rank["reason"] == from_log["reason"] == "nccl_timeout"
    assert in_rank["message"] == from_log["message"] and in_rank["hint"] == from_log["hint"]


def test_the_resume_hint_says_whether_a_checkpoint_was_saved(tmp_path):
    """A run stopped before its first complete checkpoint starts over on Resume: the hint must not
    promise "the last checkpoint"."""
    from core.diagnose import resume_hint
    assert resume_hint(tmp_path).code == "end.resume_from_start.hint"
    (tmp_path / "checkpoints" / ".step-0000002.partial").mkdir(parents=True)  # torn: it does not count
    assert resume_hint(tmp_path).code == "end.resume_from_start.hint"
    done = tmp_path / "checkpoints" / "step-0000002"
    done.mkdir()
    (done / "manifest.json").write_text("{}")
    assert resume_hint(tmp_path).code == "end.press_resume.hint"


# torchrun's own words when the machines of a job never all meet at its rendezvous (torch 2.13, CPU)
AGENT = '''\
Traceback (most recent call last):
  File ".../torch/distributed/elastic/agent/server/api.py", line 713, in _initialize_workers
    self._rendezvous(worker_group)
  File ".../torch/distributed/elastic/agent/server/api.py", line 528, in _rendezvous
'''
MACHINE0 = AGENT + '''    rdzv_info = spec.rdzv_handler.next_rendezvous()
  File ".../torch/distributed/elastic/rendezvous/static_tcp_rendezvous.py", line 67, in next_rendezvous
    self._store = TCPStore(  # type: ignore[call-arg]
torch.distributed.DistStoreError: Timed out after 601 seconds waiting for clients. 2/3 clients joined.
'''
NO_MACHINE0 = AGENT + '''    self._store = TCPStore(  # type: ignore[call-arg]
torch.distributed.DistNetworkError: The client socket has timed out after 600000ms while trying to connect to (10.0.0.1, 29500).
'''
NOT_ALL = AGENT + '''    workers = self._assign_worker_ranks(
torch.distributed.DistStoreError: wait timeout after 600000ms, keys: /none/torchelastic/assigned_ranks/1
'''
NODES = dict(nnodes=3, node_rank=1, master="10.0.0.1:29500", timeout_s=600)


def test_machines_that_never_joined_are_named_as_such(tmp_path):
    """Before: "The process exited with code 1." and "The log below shows what happened."."""
    info = diagnose.explain(tmp_path, 1, MACHINE0, nproc=2, nodes=dict(NODES, node_rank=0))
    assert info["reason"] == "machines_missing" and info["rank"] is None
    assert info["message"] == ("The other machines never joined: after 10 minutes at 10.0.0.1:29500, only 2 of the 3 "
                               "machines (this one included) had joined, so training never started.")
    assert info["hint"].startswith("Start the same command on every machine, each with its own --node-rank (0 to 2), "
                                   "within 10 minutes of each other") and "firewall" in info["hint"]
    assert "2/3 clients joined" in info["log_tail"]
    info = diagnose.explain(tmp_path, 1, NO_MACHINE0, nproc=2, nodes=NODES)
    assert info["reason"] == "machines_missing" and info["message"] == (
        "This machine (machine 1) could not reach machine 0 at 10.0.0.1:29500 within 10 minutes, so training never "
        "started.")
    assert info["hint"].startswith("Start machine 0's command first or at the same time (it opens 10.0.0.1:29500)")
    info = diagnose.explain(tmp_path, 1, NOT_ALL, nproc=2, nodes=NODES)
    assert info["reason"] == "machines_missing" and info["message"] == (
        "The 3 machines never all joined at 10.0.0.1:29500 within 10 minutes, so training never started.")


def test_a_job_on_one_machine_or_a_rank_that_failed_is_not_a_missing_machine(tmp_path):
    assert diagnose.explain(tmp_path, 1, MACHINE0, nproc=2)["reason"] == "crashed"  # no nodes: one machine
    assert diagnose.explain(tmp_path, 1, SUMMARY + MACHINE0, nproc=2, nodes=NODES)["reason"] != "machines_missing"
    write_rank_error(tmp_path, 0, "data_error", "Row 3 is broken")
    assert diagnose.explain(tmp_path, 1, MACHINE0, nproc=2, nodes=NODES)["reason"] == "data_error"


# torchrun's own words (torch 2.13, CPU) when the rendezvous cannot even begin at --master; each log starts
# with Danlu's line naming the command, whose "--rdzv-conf timeout=" made them all "never joined"
STARTED = ("[danlu] job 20261204-111129-3c21eb started 2026-12-04 11:11:34: -m torch.distributed.run --nproc-per-node 1 "
           "--nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --master-port 29500 --rdzv-conf timeout=600 "
           "-m core.recipes.train --config run/config.yaml\n")
PORT_TAKEN = STARTED + MACHINE0.split("torch.distributed.DistStoreError")[0] + (
    "torch.distributed.DistNetworkError: The server socket has failed to listen on any local network address. port: "
    "29500, useIpv6: false, code: -98, name: EADDRINUSE, message: address already in use\n")
NOT_MACHINE0 = STARTED + (
    "[W1204 11:14:09.394571251 TCPStore.cpp:340] [c10d] TCP client failed to connect/validate to host 10.0.0.1:29500 - "
    "retrying (try=0, timeout=600000ms, delay=427ms): Ping failed, invalid value returned from server. Expected: 11162, "
    "Got: 1347703880\n") + AGENT + (
    "torch.distributed.DistNetworkError: Ping failed, invalid value returned from server. Expected: 11162, Got: 1347703880\n")
NO_NAME = STARTED.replace("10.0.0.1", "gpu-0.lab") + (
    "[W1204 11:11:50.339455194 socket.cpp:764] [c10d] The IPv6 network addresses of (gpu-0.lab, 29500) cannot be "
    "retrieved (gai error: -2 - Name or service not known).\n"
    "[E1204 11:12:02.335810920 socket.cpp:1028] [c10d] The client socket has timed out after 600000ms while trying to "
    "connect to (gpu-0.lab, 29500).\n") + AGENT + (
    "torch.distributed.DistNetworkError: The client socket has timed out after 600000ms while trying to connect to "
    "(gpu-0.lab, 29500).\n")
TWO = dict(nnodes=2, node_rank=0, master="10.0.0.1:29500", timeout_s=600)


def test_a_port_taken_on_machine_0_is_named_with_another_port_to_pick(tmp_path):
    """Before: "The 2 machines never all joined at 10.0.0.1:29500 within 10 minutes" (it failed at once)."""
    info = diagnose.explain(tmp_path, 1, PORT_TAKEN, nodes=TWO)
    assert info["reason"] == "port_in_use" and info["rank"] is None
    assert info["message"] == ("This machine (machine 0) could not open port 29500 for the other machines to join at "
                               "10.0.0.1:29500: another program here already uses that port (perhaps another training "
                               "job), so training never started.")
    assert info["hint"] == ("Choose another port in --master, one that no program uses on machine 0 (for example 29501), "
                            "and start the same command with that same --master on every machine; or stop the program "
                            "that holds port 29500.")
    assert info["message_msg"]["code"] == "fail.port_in_use" and "EADDRINUSE" in info["log_tail"]


def test_another_program_at_the_master_port_is_named_on_machine_1(tmp_path):
    """Before: "The 2 machines never all joined at 10.0.0.1:29500 within 10 minutes"."""
    info = diagnose.explain(tmp_path, 1, NOT_MACHINE0, nodes=dict(TWO, node_rank=1))
    assert info["reason"] == "port_in_use"
    assert info["message"] == ("This machine (machine 1) reached 10.0.0.1:29500, but the program answering there is not "
                               "machine 0's training, so training never started.")
    assert info["hint"].startswith("Another program uses port 29500 on that computer, or --master names the wrong "
                                   "computer.") and "(for example 29501)" in info["hint"]


def test_a_master_name_this_machine_cannot_look_up_is_named(tmp_path):
    """Before: "This machine (machine 1) could not reach machine 0 at gpu-0.lab:29500 within 10 minutes" and
    "Start machine 0's command first"."""
    nodes = dict(TWO, node_rank=1, master="gpu-0.lab:29500")
    info = diagnose.explain(tmp_path, 1, NO_NAME, nodes=nodes)
    assert info["reason"] == "master_not_found"
    assert info["message"] == ("This machine (machine 1) could not find machine 0: the name gpu-0.lab in --master "
                               "gpu-0.lab:29500 is not known on this machine's network, so training never started.")
    assert info["hint"] == ("Check the spelling of gpu-0.lab in --master, or use machine 0's IP address instead (on "
                            "machine 0, `hostname -I` prints it); then start the same command with that same --master "
                            "on every machine.")
    # a name that resolves but whose machine 0 never answered stays "could not reach machine 0"
    info = diagnose.explain(tmp_path, 1, NO_NAME.replace("gpu-0.lab", "gpu-1.lab", 2), nodes=nodes)
    assert info["message_msg"]["code"] == "fail.machine0_unreachable"


def test_danlus_own_command_line_is_no_evidence_of_a_rendezvous_timeout(tmp_path):
    """The command names --rdzv-conf timeout=: any failure in the rendezvous read as 'never all joined'."""
    other = STARTED + AGENT + "RuntimeError: something else went wrong\n"
    info = diagnose.explain(tmp_path, 1, other, nodes=TWO)
    assert info["reason"] == "crashed" and info["message"] == "The process exited with code 1."
    assert diagnose.explain(tmp_path, 1, STARTED + NOT_ALL, nodes=TWO)["message_msg"]["code"] == "fail.machines_missing"
