"""core.gpus: nvidia-smi's answer read, and CUDA_VISIBLE_DEVICES set for Danlu itself respected."""
from core import gpus

SMI = """0, GPU-aaaa1111-0000, NVIDIA H100 80GB HBM3, 81559, 80000
1, GPU-bbbb2222-0000, NVIDIA H100 80GB HBM3, 81559, 1200
2, GPU-cccc3333-0000, NVIDIA H100 80GB HBM3, 81559, 81000
not a line
"""


def test_nvidia_smi_lines_are_read():
    found = gpus.parse_smi(SMI)
    assert [g["index"] for g in found] == [0, 1, 2]
    assert found[1] == dict(index=1, uuid="GPU-bbbb2222-0000", name="NVIDIA H100 80GB HBM3",
                            memory_total_mib=81559, memory_free_mib=1200)


def test_cuda_visible_devices_limits_the_gpus_danlu_offers():
    all_ = gpus.parse_smi(SMI)
    assert gpus.visible(all_, None) == all_                       # unset: every GPU
    assert [g["index"] for g in gpus.visible(all_, "2,0")] == [2, 0]
    assert [g["index"] for g in gpus.visible(all_, "GPU-bbbb")] == [1]  # a UUID (prefix), as CUDA takes it
    assert gpus.visible(all_, "") == [] and gpus.visible(all_, "-1") == []
    assert [g["index"] for g in gpus.visible(all_, "1,7,2")] == [1]  # CUDA stops at the first unknown entry


def test_detect_gpus_applies_cuda_visible_devices(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\ncat <<'X'\n" + SMI + "X\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv(gpus.FAKE_ENV, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [g["index"] for g in gpus.detect_gpus()] == [1]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert [g["index"] for g in gpus.detect_gpus()] == [0, 1, 2]
