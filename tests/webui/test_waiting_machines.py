"""The Train tab while a job on several machines waits for the others to join torchrun's rendezvous:
its status line and the job table say so, in the page's language, with what to do if it takes long."""
import pytest

from core import jobs as J
from core import progress
from core.launch_commands import build_command
from core.launcher import LaunchSpec
from core.rundir import RunDir, write_json
from webui.context import Gui
from webui.jobview import status_markdown
from webui.tabs import train_tab as tt


@pytest.fixture
def gui(services):
    return Gui(services=services)


def test_the_status_line_and_the_table_say_the_job_waits_for_the_other_machines(gui):
    run_dir = gui.ws.runs / "x"
    run_dir.mkdir(parents=True)
    spec = LaunchSpec(nnodes=3, node_rank=1, master="10.0.0.1:29500")
    job = gui.store.create(kind="train", name="x", run_dir=str(run_dir), argv=build_command(run_dir / "config.yaml", 2, spec),
                           gpus=["cpu"], nproc=2)
    assert gui.store.transition(job.id, J.STARTING) and gui.store.transition(job.id, J.RUNNING)
    st = progress.status(gui.store.get(job.id))
    en = status_markdown(st, "en")
    assert "waiting for the other machines to join at 10.0.0.1:29500: training starts once all 3 have joined " \
           "(this is machine 1)" in en and "loading the model and data" not in en
    assert "**What to do:** If this takes long, start the same command on each of the other machines" in en
    zh = status_markdown(st, "zh-CN")
    assert "正在等待其他机器加入 10.0.0.1:29500" in zh and "0 到 2" in zh and "waiting" not in zh
    assert list(tt.refresh_jobs(gui, "en", job.id, "")[0].iloc[:, 4]) == ["waiting for the other machines"]
    assert list(tt.refresh_jobs(gui, "zh-CN", job.id, "")[0].iloc[:, 4]) == ["等待其他机器"]
    # a rank started here: every machine joined, and the words are the recipe's own again
    write_json(RunDir(run_dir).heartbeat, dict(job_id=job.id, ranks={"4242": 2}))
    st = progress.status(gui.store.get(job.id))
    assert "loading the model and data" in status_markdown(st, "en") and "What to do" not in status_markdown(st, "en")
