"""The memory plan and the sharding choice: what is kept, recomputed, offloaded or split, for
several model shapes and amounts of free memory (issue 20)."""
import pytest

from core.memory import Shape, estimate
from core.memory_plan import SAFETY, HEADROOM_GIB, choose_sharding, plan_memory

LLAMA_8B = Shape(hidden=4096, layers=32, intermediate=14336, vocab=128256, heads=32, kv_heads=8)
LLAMA_70B = Shape(hidden=8192, layers=80, intermediate=28672, vocab=128256, heads=64, kv_heads=8)
QWEN_05B = Shape(hidden=896, layers=24, intermediate=4864, vocab=151936, heads=14, kv_heads=2, tied_embeddings=True)


def plan(shape=LLAMA_8B, free=139.0, mb=4, seq=2048, **kw):
    return plan_memory(shape, free_gib=free, micro_batch_size=mb, seq=seq, **kw)


def test_a_big_card_keeps_every_layer():
    p = plan()  # H200, 8B, mb 4 x 2048: measured 41 GiB without checkpointing
    assert (p.keep, p.recompute, p.offload) == (32, 0, False) and not p.checkpointing
    assert 38 < p.need_gib < 50
    assert "fastest" in str(p.why) and "139.0 GiB free" in str(p.why)


def test_lowest_is_todays_behaviour():
    p = plan(mode="lowest")  # measured 9.1 GiB at mb 4 with checkpointing and offload
    assert (p.keep, p.offload) == (0, True) and p.layer_modes() == ["offload"] * 32
    assert 7.5 < p.need_gib < 10.0
    assert plan(mode="lowest", offload_activations=False).layer_modes() == ["recompute"] * 32
    assert plan(mode="lowest", gradient_checkpointing=False).keep == 32
    assert plan(mode="lowest", can_offload=False).offload is False  # CPU: nothing to offload to


@pytest.mark.parametrize("free", [16.0, 24.0, 40.0])
def test_a_smaller_card_keeps_the_last_layers_that_fit(free):
    p = plan(free=free)
    assert 0 < p.keep < 32 and not p.offload
    assert p.layer_modes() == ["recompute"] * p.recompute + ["keep"] * p.keep  # the last layers keep theirs
    assert p.need_gib <= free * SAFETY - HEADROOM_GIB
    one_more = plan_memory(LLAMA_8B, free_gib=free + 2.0, micro_batch_size=4, seq=2048)
    assert one_more.keep >= p.keep


def test_recompute_then_offload_when_memory_is_short():
    assert (plan(free=14.0).keep, plan(free=14.0).offload) == (0, False)
    tight = plan(free=10.0)
    assert (tight.keep, tight.offload) == (0, True) and "computer's memory" in str(tight.why)
    assert plan(free=10.0, can_offload=False).offload is False


def test_more_free_memory_never_keeps_fewer_layers():
    keeps = [plan(free=f, mb=1, seq=32768).keep for f in range(10, 200, 5)]
    assert keeps == sorted(keeps) and keeps[0] == 0 and keeps[-1] == 32


@pytest.mark.parametrize("shape,mb,seq", [(LLAMA_8B, 1, 16384), (LLAMA_8B, 1, 32768), (QWEN_05B, 8, 4096),
                                          (LLAMA_70B, 1, 2048)])
def test_plans_fit_what_they_were_given(shape, mb, seq):
    for free in (12.0, 24.0, 48.0, 80.0, 139.0):
        p = plan(shape, free, mb, seq)
        if p.keep > 0 or not p.offload:
            assert p.need_gib <= free * SAFETY - HEADROOM_GIB, (free, p)


def test_the_lowest_plan_agrees_with_the_estimate():
    est = estimate(LLAMA_8B, micro_batch_size=4, max_seq_length=2048, offload_activations=True)
    assert plan(mode="lowest").need_gib == pytest.approx(est.total_gib, rel=0.02)
    est = estimate(LLAMA_8B, micro_batch_size=4, max_seq_length=2048, gradient_checkpointing=False)
    assert plan(mode="lowest", gradient_checkpointing=False).need_gib == pytest.approx(est.total_gib, rel=0.02)


def test_a_loaded_model_is_not_counted_twice():
    before, after = plan(free=24.0), plan(free=24.0 - 6.0, loaded=True)  # ~6 GiB of weights now on the card
    assert abs(after.keep - before.keep) <= 1


def test_sharding_only_when_one_gpu_is_not_enough():
    kw = dict(micro_batch_size=1, seq=2048)
    assert choose_sharding(LLAMA_70B, mode="auto", gpus=2, free_gib=40.0, **kw).fsdp
    assert "does not fit one GPU" in str(choose_sharding(LLAMA_70B, mode="auto", gpus=4, free_gib=24.0, **kw).why)
    assert not choose_sharding(LLAMA_8B, mode="auto", gpus=2, free_gib=80.0, **kw).fsdp
    assert not choose_sharding(LLAMA_70B, mode="auto", gpus=1, free_gib=40.0, **kw).fsdp
    assert not choose_sharding(LLAMA_70B, mode="off", gpus=2, free_gib=40.0, **kw).fsdp
    assert choose_sharding(LLAMA_8B, mode="fsdp", gpus=2, free_gib=80.0, **kw).fsdp
    short = choose_sharding(LLAMA_70B, mode="auto", gpus=2, free_gib=16.0, **kw)
    assert not short.fsdp and "even split" in str(short.why)


def test_long_rows_tile_the_recomputed_mlp_only_when_the_layers_are_compiled():
    from core.memory_plan import MLP_TILE_TOKENS, mlp_tiles
    assert mlp_tiles(MLP_TILE_TOKENS, True) == 1 and mlp_tiles(2048, True) == 1
    assert mlp_tiles(16384, True) == 4 and mlp_tiles(32768, True) == 8 and mlp_tiles(16385, True) == 5
    assert mlp_tiles(32768, False) == 1  # eager recomputation makes every piece before the first backward
    kw = dict(mode="lowest", free_gib=139.0, micro_batch_size=1, seq=16384)
    plain, tiled = plan_memory(LLAMA_8B, **kw), plan_memory(LLAMA_8B, tiled=True, **kw)
    assert (plain.mlp_tiles, tiled.mlp_tiles) == (1, 4) and tiled.to_dict()["mlp_tiles"] == 4
    # the working set's [tokens x intermediate] part: three whole buffers, or three quarters and one whole
    assert plain.need_gib - tiled.need_gib == pytest.approx(16384 * 14336 * 2 * (3 - 1.75) / 2**30, abs=0.05)
    assert "4 pieces" in str(tiled.why) and "pieces" not in str(plain.why)
    kept = plan_memory(LLAMA_8B, mode="auto", free_gib=139.0, micro_batch_size=1, seq=8192, tiled=True)
    assert kept.keep == kept.layers and kept.mlp_tiles == 1  # nothing recomputed: nothing to tile


def test_the_layers_are_compiled_on_a_gpu_unless_the_model_is_split():
    """One rule for the recipe (speed.will_compile) and the page's estimate: only compiled layers
    run their MLP in pieces."""
    from core.memory_plan import layers_compiled
    assert layers_compiled(True, on_gpu=True, sharded=False)
    assert not layers_compiled(False, on_gpu=True, sharded=False)
    assert not layers_compiled(True, on_gpu=False, sharded=False)
    assert not layers_compiled(True, on_gpu=True, sharded=True)


def test_the_plan_stays_close_above_the_peaks_measured_for_long_rows():
    """Every long-row run of bench/long_memory.sh on an H200 (8B, one row, lowest memory) whose MLP
    pieces are today's: the plan's figure (weights included, the CUDA context not: the allocator's
    peak does not see it) is at most 1% under the measured peak and at most 15% over it."""
    import json
    from pathlib import Path
    from core.memory import CONTEXT_GIB
    from core.memory_plan import mlp_tiles
    rows = [json.loads(line) for line in
            (Path(__file__).parents[2] / "bench/results/long-memory-h200.jsonl").read_text().splitlines()]
    today = [r for r in rows if r["memory_plan"]["mode"] == "lowest"
             and r["memory_plan"]["mlp_tiles"] == mlp_tiles(r["seq"], True)]
    assert {r["seq"] for r in today} >= {65536, 131072, 262144}
    for r in today:
        p = plan_memory(LLAMA_8B, mode="lowest", free_gib=80.0, micro_batch_size=1, seq=r["seq"], tiled=True)
        assert 0.99 <= (p.need_gib - CONTEXT_GIB) / r["peak_gib"] <= 1.15, (r["seq"], p.need_gib, r["peak_gib"])


def test_long_rows_run_in_at_most_eight_pieces():
    """16 pieces held nearly every piece's buffers at the backward's peak on an H200; 8 did not."""
    from core.memory_plan import MLP_TILES_MAX, mlp_tiles
    assert MLP_TILES_MAX == 8
    assert [mlp_tiles(n, True) for n in (32768, 65536, 262144, 10 ** 6)] == [8, 8, 8, 8]
