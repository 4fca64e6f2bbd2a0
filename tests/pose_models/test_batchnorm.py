"""AdaBN: BatchNorm statistics become exactly those of the calibration images; nothing else moves.

Issue 7."""
import pytest
import torch
from torch import nn

from pose_models.batchnorm import recalibrate_batchnorm


def test_recalibration_takes_the_statistics_of_the_new_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))
    model.train()
    for _ in range(20):  # "training" statistics: inputs around 0
        model(torch.randn(8, 3, 6, 6))
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    shifted = [torch.randn(8, 3, 6, 6) * 3 + 5 for _ in range(4)]  # the "real" domain: other statistics
    assert recalibrate_batchnorm(model, iter(shifted), torch.device("cpu")) == 32
    assert not model.training and all(m.momentum == 0.1 for m in (model[1], model[4]))
    with torch.no_grad():
        feats = model[0](torch.cat(shifted))
    assert torch.allclose(model[1].running_mean, feats.mean((0, 2, 3)), atol=1e-4)  # equal-size batches: exact
    for k, v in model.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k])


def test_evaluate_refuses_calibration_for_non_2d_models(tmp_path):
    from pose_models.evaluate import evaluate
    from pose_models.models import build_model
    from syrip_gen.errors import UserError

    model = build_model("lifter", {"hidden": 8, "blocks": 1, "dropout": 0.0})
    ckpt = tmp_path / "lifter.pt"
    from pose_models.checkpoint import save_checkpoint

    save_checkpoint(ckpt, model, torch.optim.SGD(model.parameters(), lr=0.1), 0, 0, {}, {})
    with pytest.raises(UserError, match="2D pose models"):
        evaluate(ckpt, tmp_path, bn_calibration=tmp_path, log=lambda *_: None)
