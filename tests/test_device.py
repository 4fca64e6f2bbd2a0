"""The numeric path chosen at run time (pose_models/device.py): bfloat16 only where the CPU has it
natively and a probe of the real step finds it faster; the choice is recorded with the checkpoint."""
import pytest
import torch

from pose_models.device import choose_precision, cpu_has_native_bf16
from syrip_gen.errors import UserError

CPU = torch.device("cpu")


def test_native_bf16_is_read_from_the_cpu_flags():
    assert cpu_has_native_bf16("flags : fpu avx2 avx512f avx512_bf16 sse") is True
    assert cpu_has_native_bf16("flags : fpu avx2 amx_bf16 amx_tile") is True
    assert cpu_has_native_bf16("flags : fpu avx2 avx512f avx512bw") is False


def test_auto_keeps_float32_without_native_bf16_and_never_probes():
    def probe(_):
        raise AssertionError("no probe on a CPU without native bfloat16")
    assert choose_precision("auto", CPU, probe, native_bf16=False) == "float32"


@pytest.mark.parametrize("t16, want", [(0.5, "bfloat16"), (0.97, "float32"), (1.5, "float32")])
def test_auto_follows_the_probe_where_bf16_is_native(t16, want):
    times = {"float32": 1.0, "bfloat16": t16}
    assert choose_precision("auto", CPU, times.__getitem__, native_bf16=True, log=lambda *_: None) == want


def test_explicit_choices_and_errors():
    assert choose_precision("bfloat16", CPU, native_bf16=False) == "bfloat16"
    assert choose_precision("float32", CPU, native_bf16=True) == "float32"
    with pytest.raises(UserError, match="float16 needs a CUDA"):
        choose_precision("float16", CPU)
    with pytest.raises(UserError, match="precision 'half'"):
        choose_precision("half", CPU)


def test_flip_test_in_one_batch_equals_two_passes():
    from pose_models.heatmaps import flip_heatmaps, flip_test

    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 17, 3, padding=1)
    x = torch.randn(2, 3, 16, 12)
    two = 0.5 * (net(x) + flip_heatmaps(net(x.flip(-1))))
    torch.testing.assert_close(flip_test(net, x), two)
