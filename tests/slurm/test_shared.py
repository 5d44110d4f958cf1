"""Is the workspace where the cluster's nodes can see it?"""
from pathlib import Path

from core.slurm.shared import fs_type, problems

MOUNTS = """/dev/sda1 / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw 0 0
nas:/export/home /home nfs4 rw 0 0
/dev/sdb1 /home/ann/local\\040disk xfs rw 0 0
lustre@o2ib:/fs /lustre lustre rw 0 0
"""


def test_the_filesystem_of_a_path_is_its_longest_mount():
    assert fs_type(Path("/home/ann/.danlu"), MOUNTS) == "nfs4"
    assert fs_type(Path("/home/ann/local disk/ws"), MOUNTS) == "xfs"
    assert fs_type(Path("/lustre/ann"), MOUNTS) == "lustre"
    assert fs_type(Path("/opt/danlu"), MOUNTS) == "ext4"
    assert fs_type(Path("/tmpfoo"), MOUNTS) == "ext4"  # a prefix of the name is not a parent folder


def test_a_local_disk_is_refused_when_the_job_may_run_elsewhere():
    paths = {"workspace": Path("/home/ann/local disk/ws"), "Danlu": Path("/lustre/danlu")}
    found = problems(paths, ["login1", "gpu01", "gpu02"], {"login1"}, MOUNTS)
    assert [p.where for p in found] == ["workspace"]
    assert "xfs" in found[0].message and "gpu01, gpu02" in found[0].message and "DANLU_HOME" in found[0].hint


def test_a_cluster_of_this_computer_alone_needs_nothing_shared():
    assert problems({"workspace": Path("/tmp/ws")}, ["vm"], {"vm"}, MOUNTS) == []
    assert problems({"workspace": Path("/home/ann/ws")}, ["gpu01"], {"login1"}, MOUNTS) == []  # nfs4
