"""The numeric path (pose_models/device.py) is a fixed rule of the machine's flags and the config, never a
timing race (issue 30): the same config on the same machine always trains in the same path, and a resumed
run continues in the path its checkpoint recorded."""
import pytest
import torch

from pose_models.device import NumericPath, cpu_has_native_bf16, numeric_path, resumed_path
from syrip_gen.errors import UserError

CPU = torch.device("cpu")
NO_ENV: dict = {}


def test_native_bf16_is_read_from_the_cpu_flags_and_the_isa_caps():
    assert cpu_has_native_bf16("flags : fpu avx2 avx512f avx512_bf16 sse", env=NO_ENV) is True
    assert cpu_has_native_bf16("flags : fpu avx2 amx_bf16 amx_tile", env=NO_ENV) is True
    assert cpu_has_native_bf16("flags : fpu avx2 avx512f avx512bw", env=NO_ENV) is False
    bf16 = "flags : avx512f avx512_bf16"
    assert cpu_has_native_bf16(bf16, env={"ATEN_CPU_CAPABILITY": "avx2"}) is False
    assert cpu_has_native_bf16(bf16, env={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) is False
    assert cpu_has_native_bf16(bf16, env={"ATEN_CPU_CAPABILITY": "avx512_bf16"}) is True


@pytest.mark.parametrize("native, want", [(True, ("bfloat16", True)), (False, ("float32", False))])
def test_auto_is_a_fixed_rule_of_the_cpu(native, want):
    for task in ("pose2d", "detector"):
        paths = {numeric_path(task, CPU, native_bf16=native, env=NO_ENV) for _ in range(3)}
        assert len(paths) == 1
        p = paths.pop()
        assert (p.precision, p.channels_last) == want and "auto" in p.reason
    lifter = numeric_path("lifter", CPU, native_bf16=native, env=NO_ENV)
    assert (lifter.precision, lifter.channels_last) == ("float32", False)


def test_config_pins_and_the_environment_switch():
    assert numeric_path("pose2d", CPU, "float32", native_bf16=True, env=NO_ENV).precision == "float32"
    assert numeric_path("pose2d", CPU, amp=False, native_bf16=True, env=NO_ENV).precision == "float32"
    p = numeric_path("pose2d", CPU, "bfloat16", channels_last=False, native_bf16=False, env=NO_ENV)
    assert (p.precision, p.channels_last) == ("bfloat16", False)
    forced = numeric_path("pose2d", CPU, native_bf16=False, env={"SYRIP_PRECISION": "bfloat16"})
    assert forced.precision == "bfloat16" and "SYRIP_PRECISION" in forced.reason
    assert numeric_path("pose2d", CPU, native_bf16=True, env={"SYRIP_PRECISION": "float32"}).precision == "float32"
    assert numeric_path("lifter", CPU, env={"SYRIP_PRECISION": "bfloat16"}).precision == "bfloat16"
    with pytest.raises(UserError, match="SYRIP_PRECISION"):
        numeric_path("pose2d", CPU, env={"SYRIP_PRECISION": "half"})
    with pytest.raises(UserError, match="float16 needs a CUDA"):
        numeric_path("pose2d", CPU, "float16", env=NO_ENV)
    with pytest.raises(UserError, match="precision 'half'"):
        numeric_path("pose2d", CPU, "half", env=NO_ENV)
    with pytest.raises(UserError, match="no image tensors"):
        numeric_path("lifter", CPU, channels_last=True, env=NO_ENV)


def test_a_resume_keeps_the_recorded_path_whatever_the_machine_now_says(monkeypatch):
    rec = {"precision": "bfloat16", "channels_last": True}
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")  # the rule would now say float32 NCHW
    assert numeric_path("pose2d", CPU).precision == "float32"
    assert resumed_path(rec, "pose2d", CPU) == NumericPath("bfloat16", True, "recorded by the checkpoint")
    with pytest.raises(UserError, match="resumes only in that path"):
        resumed_path(rec, "pose2d", CPU, precision="float32")
    with pytest.raises(UserError, match="resumes only in that path"):
        resumed_path(rec, "pose2d", CPU, channels_last=False)
    assert resumed_path({}, "pose2d", CPU).precision == "float32"  # no record: decided as a new run


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
