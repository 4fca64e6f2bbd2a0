"""The numeric path chosen at run time (pose_models/device.py): bfloat16 only where the CPU has it
natively and a probe of the real step finds it faster; the choice is recorded with the checkpoint."""
import pytest
import torch

from pose_models.device import choose_fast_path, cpu_has_native_bf16, precision_candidates
from syrip_gen.errors import UserError

CPU = torch.device("cpu")


def test_native_bf16_is_read_from_the_cpu_flags():
    assert cpu_has_native_bf16("flags : fpu avx2 avx512f avx512_bf16 sse") is True
    assert cpu_has_native_bf16("flags : fpu avx2 amx_bf16 amx_tile") is True
    assert cpu_has_native_bf16("flags : fpu avx2 avx512f avx512bw") is False


def test_candidates_without_native_bf16_are_float32_only():
    assert precision_candidates("auto", CPU, native_bf16=False) == ["float32"]
    assert precision_candidates("auto", CPU, native_bf16=True) == ["float32", "bfloat16"]
    assert precision_candidates("bfloat16", CPU, native_bf16=False) == ["bfloat16"]


def test_one_candidate_is_never_probed():
    def probe(_):
        raise AssertionError("nothing to choose between")
    assert choose_fast_path([("float32", False)], probe) == ("float32", False)


@pytest.mark.parametrize("times, want", [([1.0, 0.8, 0.5, 0.6], ("bfloat16", False)),
                                         ([1.0, 0.97, 1.2, 1.3], ("float32", False)),  # within 5 %: the plain path
                                         ([1.0, 0.6, 1.5, 0.9], ("float32", True))])
def test_the_fastest_candidate_wins_by_a_margin(times, want):
    cands = [("float32", False), ("float32", True), ("bfloat16", False), ("bfloat16", True)]
    assert choose_fast_path(cands, lambda c: times, log=lambda *_: None) == want


def test_explicit_choices_and_errors():
    with pytest.raises(UserError, match="float16 needs a CUDA"):
        precision_candidates("float16", CPU)
    with pytest.raises(UserError, match="precision 'half'"):
        precision_candidates("half", CPU)


def test_the_probe_times_real_steps_and_leaves_model_and_rng_alone():
    from pose_models.device import step_probe

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batch = {"image": torch.randn(2, 3, 8, 8)}
    rng = torch.get_rng_state()
    probe = step_probe(net, batch, lambda m, b: m(b["image"]).square().mean(), CPU, 2)
    times = probe([("float32", False), ("float32", True)])
    assert len(times) == 2 and all(t > 0 for t in times)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def test_flip_test_in_one_batch_equals_two_passes():
    from pose_models.heatmaps import flip_heatmaps, flip_test

    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 17, 3, padding=1)
    x = torch.randn(2, 3, 16, 12)
    two = 0.5 * (net(x) + flip_heatmaps(net(x.flip(-1))))
    torch.testing.assert_close(flip_test(net, x), two)
