"""Model parts: torchvision / SimpleBaselines weight layouts, heatmap decoding, flip test, GRL, lifter maths.

Issue 6."""
import numpy as np
import pytest
import torch

from pose_models.backbones import ResNet, load_torchvision_resnet, unwrap_state_dict
from pose_models.heatmaps import decode_dark, decode_quarter, flip_heatmaps, flip_test, gaussian_targets
from pose_models.pose2d import PoseConfig, PoseResNet
from syrip_gen.coco import FLIP_INDEX
from syrip_gen.errors import UserError


def _bn(prefix, c):
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def torchvision_resnet_shapes(depth):
    """torchvision resnet{18,50} state-dict names and shapes, written out from its architecture
    (independent of pose_models): BasicBlock 2-2-2-2, Bottleneck 3-4-6-3 with expansion 4."""
    shapes = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    bottleneck = depth == 50
    blocks = (3, 4, 6, 3) if bottleneck else (2, 2, 2, 2)
    inp = 64
    for li, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks), 1):
        out = planes * (4 if bottleneck else 1)
        for b in range(n):
            p = f"layer{li}.{b}"
            if bottleneck:
                shapes.update({f"{p}.conv1.weight": (planes, inp, 1, 1), **_bn(f"{p}.bn1", planes),
                               f"{p}.conv2.weight": (planes, planes, 3, 3), **_bn(f"{p}.bn2", planes),
                               f"{p}.conv3.weight": (out, planes, 1, 1), **_bn(f"{p}.bn3", out)})
            else:
                shapes.update({f"{p}.conv1.weight": (planes, inp, 3, 3), **_bn(f"{p}.bn1", planes),
                               f"{p}.conv2.weight": (planes, planes, 3, 3), **_bn(f"{p}.bn2", planes)})
            if b == 0 and (inp != out or li > 1):
                shapes.update({f"{p}.downsample.0.weight": (out, inp, 1, 1), **_bn(f"{p}.downsample.1", out)})
            inp = out
    shapes.update({"fc.weight": (1000, inp), "fc.bias": (1000,)})
    return shapes


def _state(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.tensor(3) if s == () else torch.randn(s, generator=g)) for k, s in shapes.items()}


@pytest.mark.parametrize("depth,n_keys", [(18, 122), (50, 320)])
def test_torchvision_layout_loads_strict(depth, n_keys):
    shapes = torchvision_resnet_shapes(depth)
    assert len(shapes) == n_keys  # torchvision's resnet18/50 state dicts hold 122/320 entries
    state = _state(shapes)
    full = ResNet(depth, with_fc=True)
    assert {k: tuple(v.shape) for k, v in full.state_dict().items()} == shapes
    full.load_state_dict(state, strict=True)
    trunk = ResNet(depth)
    load_torchvision_resnet(trunk, {"module." + k: v for k, v in state.items()}, "resnet.pth")
    assert torch.equal(trunk.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_wrong_depth_is_a_clear_error():
    state = _state(torchvision_resnet_shapes(50))
    with pytest.raises(UserError, match="weights do not fit"):
        load_torchvision_resnet(ResNet(18), state, "resnet50.pth")
    with pytest.raises(UserError, match="not a PyTorch state dict"):
        unwrap_state_dict({"epoch": 3}, "x.pth")


def test_simplebaselines_layout_loads():
    torch.manual_seed(0)
    model = PoseResNet(PoseConfig(depth=18, input_h=64, input_w=64))
    shapes = {k: s for k, s in torchvision_resnet_shapes(18).items() if not k.startswith("fc.")}
    for i, c_in in ((0, 512), (3, 256), (6, 256)):  # Xiao et al.: deconv_layers.{0,1,3,4,6,7}
        shapes[f"deconv_layers.{i}.weight"] = (c_in, 256, 4, 4)
        shapes.update(_bn(f"deconv_layers.{i + 1}", 256))
    shapes.update({"final_layer.weight": (17, 256, 1, 1), "final_layer.bias": (17,)})
    state = {"module." + k: v for k, v in _state(shapes, 1).items()}
    model.load_pretrained({"state_dict": state}["state_dict"], "pose_resnet_18.pth")
    assert torch.equal(model.final_layer.bias, state["module.final_layer.bias"])
    assert torch.equal(model.backbone.conv1.weight, state["module.conv1.weight"])
    bad = dict(state)
    bad["module.final_layer.weight"] = torch.zeros(16, 256, 1, 1)
    with pytest.raises(UserError, match="shape mismatch"):
        model.load_pretrained(bad, "other.pth")


@pytest.mark.parametrize("x,y", [(10.3, 7.6), (5.8, 12.25), (20.0, 3.45)])
def test_decoding_recovers_subpixel_peak(x, y):
    target, weight = gaussian_targets(np.array([[x, y]]), np.array([2]), (16, 24), sigma=2.0)
    hm = torch.from_numpy(target)[None]
    xy, val = decode_dark(hm)
    assert xy.shape == (1, 1, 2) and val.shape == (1, 1)
    assert np.allclose(xy[0, 0].numpy(), [x, y], atol=1e-3)  # log of a Gaussian is quadratic: exact
    xq, _ = decode_quarter(hm)
    assert np.all(np.abs(xq[0, 0].numpy() - [x, y]) <= 0.5)
    assert weight[0] == 1


def test_visibility_zero_has_zero_weight():
    _, w = gaussian_targets(np.array([[3.0, 3.0], [4.0, 4.0], [-50.0, 2.0]]), np.array([2, 0, 1]), (8, 8))
    assert w.tolist() == [1, 0, 0]


def test_flip_test_is_consistent_with_left_right_swap():
    """A model that is exactly mirror-equivariant (mirrored image -> mirrored, L/R-swapped joints) must
    give the same heatmaps with and without the flip test."""
    h, w = 32, 24
    base = np.random.default_rng(0).uniform([2, 2], [w / 4 - 3, h / 4 - 3], (17, 2))

    def render(kps):
        return torch.from_numpy(gaussian_targets(kps, np.full(17, 2), (h // 4, w // 4), 1.0)[0])

    def forward(images):  # a bright marker tells whether the image was mirrored
        out = []
        for img in images:
            mirrored = img[0, 0, -1] > 0.5
            kps = base.copy()
            if mirrored:
                kps = kps[FLIP_INDEX]
                kps[:, 0] = (w // 4 - 1) - kps[:, 0]
            out.append(render(kps))
        return torch.stack(out)

    images = torch.zeros(2, 3, h, w)
    images[:, 0, 0, 0] = 1.0
    plain = forward(images)
    assert torch.allclose(flip_test(forward, images), plain, atol=1e-6)
    assert torch.equal(flip_heatmaps(flip_heatmaps(plain)), plain)


def test_grad_reverse_flips_gradient_sign():
    from pose_models.domain import grad_reverse

    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -0.5))


def test_pose_model_shapes():
    torch.manual_seed(0)
    model = PoseResNet(PoseConfig(depth=18, input_h=64, input_w=32, deconv_channels=32)).eval()
    hm, loss = model(torch.randn(2, 3, 64, 32))
    assert hm.shape == (2, 17, 16, 8) and hm.dtype == torch.float32 and loss is None
    xy, score = model.predict_keypoints(torch.randn(2, 3, 64, 32))
    assert xy.shape == (2, 17, 2) and score.shape == (2, 17)


def test_lifter_maths():
    from pose_models.lifter import Lifter, LifterConfig, mpjpe_mm, normalise_2d, procrustes_align, random_view
    from pose_models.synthetic import TEMPLATE

    rng = np.random.default_rng(0)
    uv, rel = random_view(TEMPLATE + [0, 0, 1.0], rng)
    assert uv.shape == (17, 2) and rel.shape == (17, 3)
    assert np.allclose(rel[[11, 12]].mean(0), 0, atol=1e-9)
    n = normalise_2d(uv, np.full(17, 2))
    assert np.allclose(n[[11, 12]].mean(0), 0, atol=1e-6) and np.abs(n).max() <= 1.0 + 1e-6
    # Procrustes undoes a similarity transform exactly
    a = rng.normal(size=(2, 17, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    b = 1.7 * a @ q.T + 0.3
    assert np.allclose(procrustes_align(b, a), a, atol=1e-9)
    assert np.allclose(mpjpe_mm(a, a), 0.0, atol=1e-9)
    out, loss = Lifter(LifterConfig(hidden=32)).eval()(torch.zeros(4, 17, 2), torch.zeros(4, 17, 3))
    assert out.shape == (4, 17, 3) and loss.ndim == 0
