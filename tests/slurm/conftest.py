"""The Slurm tests' cluster: one real one-node cluster for the whole session (tests/slurm/cluster.py),
started on first use and shut down at the end, leaving no daemon behind."""
from __future__ import annotations

import os

import pytest

from tests.slurm.cluster import LocalCluster, why_not


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    reason = why_not()
    if reason:
        pytest.skip(reason)
    cluster = LocalCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)  # every Slurm command, in this process and its children
    try:
        yield cluster
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        left = cluster.stop()
        assert not left, f"Slurm daemons {left} of the test cluster would not stop"


@pytest.fixture
def slurm(slurm_cluster):
    """The session's cluster, with no job of an earlier test left in it (and none left after this one)."""
    slurm_cluster.cancel_all()
    yield slurm_cluster
    jobs = slurm_cluster.squeue()
    slurm_cluster.cancel_all()
    assert not jobs, f"jobs left in the Slurm queue after the test: {jobs}"
