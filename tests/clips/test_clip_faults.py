"""Bad inputs and faults of `sequence` (issue 34, third tour: C23, C30, C32, C33, C34, C35, C49):
one line before any work for bad settings, nothing lost or stale on a rerun, memory flat in clip length."""
import json

import pytest
from helpers.clips import plausible_fits

from syrip_gen.errors import UserError
from syrip_gen.render.sequence.clips import ClipConfig, render_clips

SMALL = dict(clips=1, seconds=0.5, fps=6, width=96, height=72, texture_size=64, gate=False,
             camera_orbit_deg=(0.0, 0.0), min_movement_m=0.0)


@pytest.fixture(scope="module")
def fits(anny_body, tmp_path_factory):
    return plausible_fits(anny_body, tmp_path_factory.mktemp("faultfits") / "fits.jsonl", n=2)


def _cli(argv, capsys):
    from syrip_gen.cli import main

    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("orbit", [("10", "-10"), ("0", "400")])
def test_c23_orbit_reversed_or_past_a_half_turn_is_one_line_before_work(fits, tmp_path, capsys, orbit):
    out = tmp_path / "s"
    code, err = _cli(["sequence", str(fits), "--out", str(out), "--clips", "1", "--seconds", "0.5",
                      "--camera-orbit-deg", *orbit], capsys)
    assert code == 2 and len(err) == 1 and "camera" in err[0], err
    assert not out.exists()


def test_c33_width_over_the_gl_limit_is_refused_before_work_and_the_rerun_is_accepted(fits, tmp_path, capsys):
    from syrip_gen.render.image.config import RenderConfig

    with pytest.raises(UserError, match="width must be <= 16384"):
        ClipConfig.of(width=17000, height=64)
    with pytest.raises(UserError, match="width must be <= 16384"):
        RenderConfig(width=17000, height=64)
    for cmd in (["render", "--limit", "1", "--variants", "1", "--workers", "1"], ["sequence", "--clips", "1"]):
        out = tmp_path / cmd[0]
        code, err = _cli([cmd[0], str(fits), "--out", str(out), *cmd[1:], "--width", "17000", "--height", "64"],
                         capsys)
        assert code == 2 and len(err) == 1 and "16384" in err[0], err
        assert not (out / "run.json").exists()  # nothing claimed: the corrected run is not refused
    from syrip_gen.render.run import check_out

    assert check_out(tmp_path / "render", "anykey", RenderConfig(width=160, height=120)) is None


@pytest.mark.parametrize("split", ["a/b", "../../escaped", "..", "", "x\\y"])
def test_c34_split_must_be_a_plain_name(split):
    from syrip_gen.render.image.config import RenderConfig

    with pytest.raises(UserError, match="split must be a plain name"):
        ClipConfig.of(split=split)
    with pytest.raises(UserError, match="split must be a plain name"):
        RenderConfig(split=split)


def test_c34_plain_split_names_pass():
    from syrip_gen.render.image.config import RenderConfig

    for split in ("train", "val2", "my-set_1.0"):
        assert ClipConfig.of(split=split).render.split == split and RenderConfig(split=split).split == split


def test_c32_advice_names_an_option_sequence_has(fits, tmp_path):
    from syrip_gen.cli import build_parser
    from syrip_gen.render.world.variants import VariantConfig

    cfg = ClipConfig.of(**SMALL, sampling=VariantConfig(fill=(0.999, 1.0), margin_px=60))
    with pytest.raises(UserError, match="every clip was dropped") as err:
        render_clips(fits, tmp_path / "s", cfg, log=lambda *_: None)
    assert "--fill" in str(err.value)
    argv = ["sequence", "F", "--out", "O", "--fill", "0.4", "0.6"]
    assert build_parser(argv).parse_args(argv).fill == [0.4, 0.6]  # the option it names exists


def test_c49_deleted_frames_and_videos_are_made_again(fits, tmp_path):
    out = tmp_path / "s"
    cfg = ClipConfig.of(**{**SMALL, "clips": 2})
    render_clips(fits, out, cfg, log=lambda *_: None)
    frame = out / "images" / "clip_00002" / "000002.jpg"
    video = out / "videos" / "clip_00001.mp4"
    before = frame.read_bytes()
    frame.unlink()
    video.unlink()
    summary = render_clips(fits, out, cfg, log=lambda *_: None)
    assert frame.read_bytes() == before  # re-rendered, the same bytes
    assert video.is_file() and summary.frames == 2 * cfg.frames and summary.clips_kept == 2


def test_c30_a_rerun_asking_for_mp4s_makes_them_from_the_frames(fits, tmp_path):
    from syrip_gen.video import read_frames

    out = tmp_path / "s"
    cfg = ClipConfig.of(**SMALL, video=False, preview=False)
    render_clips(fits, out, cfg, log=lambda *_: None)
    assert not (out / "videos").exists() and not (out / "previews").exists()
    frame = out / "images" / "clip_00001" / "000000.jpg"
    mtime = frame.stat().st_mtime_ns
    summary = render_clips(fits, out, ClipConfig.of(**SMALL), log=lambda *_: None)
    for sub in ("videos", "previews"):
        assert len(list(read_frames(out / sub / "clip_00001.mp4"))) == cfg.frames
    assert summary.previews == [str(out / "previews" / "clip_00001.mp4")]
    assert frame.stat().st_mtime_ns == mtime  # not rendered again
    clip = json.loads((out / "clips.json").read_text())["clips"][0]
    assert clip["video"] == "videos/clip_00001.mp4" and clip["preview"] == "previews/clip_00001.mp4"


def test_fill_is_a_share_of_the_frame_wherever_it_is_set():
    """``sampling.fill`` is checked by its config (the sequence CLI's --fill and YAML alike)."""
    from syrip_gen.render.world.variants import VariantConfig

    for bad in ((0.0, 0.5), (0.5, 1.5)):
        with pytest.raises(UserError, match=r"sampling.fill must be \(low, high\) with 0 < low <= high <= 1"):
            VariantConfig(fill=bad)
        with pytest.raises(UserError, match="sampling.fill must be"):
            ClipConfig.from_dict({"sampling": {"fill": list(bad)}})
    assert VariantConfig(fill=(0.2, 1.0)).fill == (0.2, 1.0)
