"""Never lose or corrupt a user's data: bad inputs and faults (issue 16), one test per case.

Renders use the numpy stand-in for GL (``FakeMaker``) where the pixels do not matter."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from helpers.render_data import use_fake_maker, write_fits

from syrip_gen.render.image.config import RenderConfig
from syrip_gen.config import RunConfig

from syrip_gen.render.run import render_dataset
from syrip_gen.errors import UserError

CFG = RenderConfig(variants=2, width=160, height=120, run=RunConfig(workers=1), shard_size=2, seed=7, contact_sheet=False)


@pytest.fixture
def fits(anny_body, tmp_path):
    return write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=2)


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- 1. render never writes into a folder it did not make ---------------------------------
def test_render_refuses_a_users_dataset_even_with_force(fits, tmp_path, monkeypatch):
    use_fake_maker(monkeypatch)
    theirs = tmp_path / "SyRIP"
    (theirs / "annotations").mkdir(parents=True)
    (theirs / "images").mkdir()
    (theirs / "annotations/person_keypoints_train_infant.json").write_text('{"images": [1, 2, 3]}')
    (theirs / "images/000000_0000.jpg").write_bytes(b"a real photo")
    before = _tree(theirs)
    for cfg in (CFG, replace(CFG, run=replace(CFG.run, force=True))):
        with pytest.raises(UserError, match="not empty and was not made by `syrip-gen render`"):
            render_dataset(fits, theirs, cfg)
    assert _tree(theirs) == before
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        render_dataset(fits, afile, CFG)
    # an empty folder, and a folder of an earlier render run, are fine
    (tmp_path / "empty").mkdir()
    assert render_dataset(fits, tmp_path / "empty", CFG).images == 4
    assert render_dataset(fits, tmp_path / "empty", CFG).shards_resumed == 2


# ---- 4. records of another body model are skipped and counted, not rendered with Anny ------
def test_render_skips_fits_of_an_unknown_body(anny_body, fits, tmp_path, monkeypatch):
    use_fake_maker(monkeypatch)
    lines = fits.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["body"] = "martian"
    fits.write_text("\n".join([json.dumps(rec)] + lines[1:]) + "\n")
    s = render_dataset(fits, tmp_path / "ds", CFG)
    why = "fit made with another body model ('martian', not 'anny')"
    assert s.fits_used == 1 and s.fits_skipped[why] == 1 and s.images == 2
    assert any("martian" in w for w in s.warnings)


# ---- 2. filter checks that the images exist -------------------------------------------------
def test_filter_rejects_and_counts_missing_image_files(tmp_path):
    import numpy as np
    from helpers.filter_fixtures import sample, write_dataset

    from syrip_gen.filter import FilterConfig, filter_dataset

    kp = np.array([[x, y, 0.0] for x, y in zip(np.linspace(-0.15, 0.15, 17), np.linspace(-0.3, 0.3, 17))])
    root = tmp_path / "ds"
    write_dataset(root, [sample(kp, fit_id=f"f{i}") for i in range(3)])
    files = sorted((root / "images").glob("*.jpg"))
    files[1].unlink()
    report = filter_dataset(root, FilterConfig(gates=("out_of_frame",)))
    assert report.missing_files == 1 and report.rejected_by == {"missing_file": 1} and report.n_kept == 2
    kept = json.loads(open(report.coco_out).read())["images"]
    assert files[1].name not in {im["file_name"] for im in kept} and len(kept) == 2


def test_filter_on_a_dataset_without_images_is_a_one_line_error(tmp_path):
    from helpers.filter_fixtures import write_dataset

    from syrip_gen.filter import filter_dataset

    root = tmp_path / "ds"
    write_dataset(root, [])
    with pytest.raises(UserError, match="lists no images; nothing to filter"):
        filter_dataset(root)


# ---- 3. a fit run is keyed by its input and settings ----------------------------------------
def test_fit_rerun_with_other_seed_or_input_is_refused_or_replaced(anny_body, tmp_path):
    from syrip_gen.fit.fitter import FitConfig, Stage, fit_file
    from syrip_gen.paths import REPO_ROOT

    skeletons = REPO_ROOT / "assets" / "postures" / "skeletons.json"
    cfg = FitConfig(overlays=False, limit=2, batch_size=2, stages=(Stage(3, 0.2, 0.05), Stage(3, 0.1, 0.02), Stage(3, 0.05, 0.01)))
    out = tmp_path / "fits"

    def records():
        return [json.loads(line) for line in (out / "fits.jsonl").read_text().splitlines()]

    fit_file(skeletons, out, cfg, body=anny_body, progress=False)
    assert {r["seed"] for r in records()} == {0}
    # the same run again, or with a larger limit / other threads: resumes
    assert fit_file(skeletons, out, replace(cfg, run=RunConfig(threads=2)), body=anny_body,
                    progress=False).skipped_existing == 2
    with pytest.raises(UserError, match="holds a different fit run"):
        fit_file(skeletons, out, replace(cfg, seed=1), body=anny_body, progress=False)
    other_input = tmp_path / "other.json"
    data = json.loads(skeletons.read_text())
    data["annotations"][0]["keypoints"][0] += 5.0
    other_input.write_text(json.dumps(data))
    with pytest.raises(UserError, match="holds a different fit run"):
        fit_file(other_input, out, cfg, body=anny_body, progress=False)
    assert {r["seed"] for r in records()} == {0}  # untouched
    s = fit_file(skeletons, out, replace(cfg, seed=1, run=RunConfig(force=True)), body=anny_body, progress=False)
    assert {r["seed"] for r in records()} == {1} and s.config["seed"] == 1 and s.fitted == 2
    assert json.loads((out / "summary.json").read_text())["config"]["seed"] == 1
    with pytest.raises(UserError, match="prune_after .1. must name a stage before the last of the 2 stages"):
        replace(cfg, stages=cfg.stages[:2])
    # a folder the fitter did not make is never written into
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and was not made by `syrip-gen fit`"):
        fit_file(skeletons, theirs, replace(cfg, run=RunConfig(force=True)), body=anny_body, progress=False)


# ---- 5. a truncated photo is skipped and counted, not used half grey --------------------------
def test_truncated_background_photo_is_skipped_and_counted(tmp_path):
    import cv2
    import numpy as np

    from syrip_gen.render.looks.background import BackgroundFolder

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (tmp_path / "a_cut.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    (tmp_path / "b_whole.jpg").write_bytes(buf.tobytes())
    assert cv2.imread(str(tmp_path / "a_cut.jpg")) is not None  # what OpenCV alone would have used
    folder = BackgroundFolder(tmp_path)
    files = {folder.sample(80, 60, np.random.default_rng(i))[1]["file"] for i in range(12)}
    assert files == {"b_whole.jpg"} and folder.unreadable == {"a_cut.jpg": 1}


# ---- 6. evaluate on nothing, train for nothing: errors, not a score of 0 ---------------------
def test_evaluate_on_an_empty_dataset_and_train_for_no_steps_are_errors(tmp_path):
    import subprocess
    import sys

    import torch

    from pose_models.checkpoint import save_checkpoint
    from pose_models.config import TrainConfig
    from pose_models.evaluate import evaluate
    from pose_models.models import build_model
    from syrip_gen.coco import write_coco

    model = build_model("lifter", {"hidden": 8, "blocks": 1, "dropout": 0.0})
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, model, torch.optim.SGD(model.parameters(), lr=0.1), 0, 0, {}, {})
    empty = tmp_path / "empty" / "annotations" / "person_keypoints_val_infant.json"
    write_coco(empty, [], [])
    with pytest.raises(UserError, match="0 images and 0 annotations; nothing to evaluate on"):
        evaluate(ckpt, empty.parent.parent, device="cpu", log=lambda *_: None)
    r = subprocess.run([sys.executable, "-m", "syrip_gen.cli", "evaluate", str(ckpt), str(empty),
                        "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "nothing to evaluate on" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(UserError, match="max_steps must be >= 1, got -3"):
        TrainConfig.from_dict({"task": "pose2d", "train": "x"}, ["max_steps=-3"])


# ---- 9/10. the review server: only its page writes; lengths and types are checked ------------
@pytest.fixture()
def review(tmp_path):
    from helpers.filter_fixtures import skeleton_2d_samples, write_dataset

    from syrip_gen.review.server import make_server, serve_in_thread

    write_dataset(tmp_path / "ds", skeleton_2d_samples(3))
    srv = make_server(tmp_path / "ds", port=0)
    serve_in_thread(srv)
    yield srv, tmp_path / "ds"
    srv.shutdown()
    srv.server_close()


def _raw(server, head: bytes, body: bytes = b"", wait: float = 15.0) -> bytes:
    """Send raw bytes on a socket (headers a browser or urllib would never send) and read the reply."""
    import socket

    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=wait) as s:
        s.sendall(head + b"\r\n\r\n" + body)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_review_server_takes_decisions_only_from_its_page(review):
    from test_review import _post, page_token

    from syrip_gen.review.decisions import decisions_path, load_decisions
    from syrip_gen.review.server import url_of

    server, ds = review
    url = url_of(server)
    token = page_token(url)
    evil = [{"X-Review-Token": ""},                                          # a page that cannot read ours
            {"X-Review-Token": "guess"},
            {"Origin": "http://evil.example"},                              # right token, other site
            {"Host": "evil.example:80"}]                                    # DNS rebinding
    for headers in evil:
        code, body = _post(url, {"image_id": 1, "decision": "reject"}, headers=headers)
        assert code == 403, (headers, body)
    # a cross-site form post (text/plain, no token) is refused too
    host = url.split("/")[2].encode()
    reply = _raw(server, b"POST /api/decision HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: text/plain\r\n"
                 b"Origin: http://evil.example\r\nContent-Length: 40", b'{"image_id": 1, "decision": "reject"}   ')
    assert reply.startswith(b"HTTP/1.0 403")
    assert load_decisions(decisions_path(ds)) == {}
    assert _post(url, {"image_id": 1, "decision": "reject"}, headers={"Origin": url.rstrip("/")})[0] == 200
    assert set(load_decisions(decisions_path(ds))) == {"1"} and len(token) > 20


def test_review_server_validates_lengths_and_types(review):
    import time

    from test_review import _post, page_token

    from syrip_gen.review.decisions import decisions_path, load_decisions
    from syrip_gen.review.server import url_of

    server, ds = review
    url = url_of(server)
    host = url.split("/")[2].encode()
    head = (b"POST /api/decision HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: application/json\r\n"
            b"X-Review-Token: " + page_token(url).encode() + b"\r\n")
    body = b'{"image_id": 1, "decision": "reject"}'
    for length in (b"-1", b"abc", b"0", b"999999999"):
        t0 = time.perf_counter()
        reply = _raw(server, head + b"Content-Length: " + length, body)
        assert reply.split(b"\r\n")[0] in (b"HTTP/1.0 400 Bad Request", b"HTTP/1.0 413 Request Entity Too Large")
        assert time.perf_counter() - t0 < 5, length  # answered at once, no hang
    # announced more than it sent and gave up: nothing is written
    reply = _raw(server, head + b"Content-Length: " + str(len(body) + 20).encode(), body)
    assert reply.startswith(b"HTTP/1.0 400")
    assert load_decisions(decisions_path(ds)) == {}
    for bad in ({"image_id": True, "decision": "reject"}, {"image_id": [1], "decision": "reject"},
                {"image_id": 1, "decision": 1}, {"image_id": 1, "decision": "reject", "reviewer": {"a": 1}}):
        assert _post(url, bad)[0] == 400, bad
    assert load_decisions(decisions_path(ds)) == {}


def test_review_port_out_of_range_is_a_one_line_error(review):
    from syrip_gen.review.server import make_server

    _, ds = review
    with pytest.raises(UserError, match="--port 70000: give a port number from 0"):
        make_server(ds, port=70000)


# ---- 8. an image depends on its own scene only, not on what the process drew before ----------
def test_lights_are_summed_in_the_scenes_order_whatever_was_drawn_before(anny_body):
    """pyrender keeps light nodes in sets (memory-address order) and the shader sums the lights in
    that order; a different order moves pixels by a grey level (measured: 1 value of 640x480x3 per
    permutation of 4 lights), so a resumed run could differ from a clean one. Whatever lights the
    renderer made before, it must iterate this scene's lights in the scene's order."""
    import numpy as np

    from syrip_gen.geometry import look_at
    from syrip_gen.render.world.scene import BodyMesh, Light, Scene, kelvin_to_rgb

    try:
        from syrip_gen.render.pixels.renderer import Renderer

        r = Renderer(64, 48, anny_body.topology(), msaa=0)
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"no EGL renderer here: {err}")
    v = np.zeros((r._num_vertices, 3), np.float32)
    v[:, 2] = np.linspace(-0.1, 0.1, len(v))
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(2, 5))
        lights = tuple(Light("directional", kelvin_to_rgb(3000 + 500 * i), 1.0 + i,
                             direction=tuple(rng.normal(size=3) - [0, 2, 0])) for i in range(n))
        if trial % 3 == 0:  # now and then a point light: other kinds, nodes made anew
            lights = lights + (Light("point", kelvin_to_rgb(4000), 1.0, position=(0.0, 1.0, 0.0)),)
        scene = Scene(bodies=(BodyMesh(v, np.full((8, 8, 3), 200, np.uint8)),),
                      camera=look_at((0.0, 1.0, 0.3), (0.0, 0.0, 0.0), width=64, height=48), support=None,
                      lights=lights)
        r.render(scene)
        order = [node.light.intensity for node in r._scene.light_nodes]
        expect = [float(x.intensity) for x in lights if x.kind == "point"] + \
                 [float(x.intensity) for x in lights if x.kind == "directional"]
        assert order == expect, trial


# ---- 7/8. fault injection: SIGKILL the render parent at random points, resume, same bytes ----
def _render_cli(fits, out, workers):
    import subprocess
    import sys

    argv = [sys.executable, "-m", "syrip_gen.cli", "render", str(fits), "--out", str(out), "--variants", "3",
            "--width", "64", "--height", "48", "--shard-size", "2", "--texture-size", "64", "--seed", "4",
            "--shadows", "0.5", "--workers", str(workers)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_render_killed_at_random_points_resumes_to_the_same_bytes(anny_body, tmp_path):
    """The real CLI with two loky workers, killed (SIGKILL of the parent) three times at random
    moments: its workers end with it, and the resumed dataset equals an uninterrupted run byte
    for byte (images, depth-free JPEGs of the real GL renderer, shard manifests, COCO file)."""
    import random
    import signal
    import time

    import psutil

    try:
        from syrip_gen.render.pixels.renderer import Renderer

        Renderer(64, 48, anny_body.topology())
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"no EGL renderer here: {err}")
    fits = write_fits(anny_body, tmp_path / "fits" / "fits.jsonl", n=3, seed=3)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert _render_cli(fits, clean, 1).wait(timeout=300) == 0
    rng = random.Random(16)
    left = []
    try:
        for kill in range(3):
            before = len(list(killed.glob("shards/*/shard.json")))
            p = _render_cli(fits, killed, 2)
            t0 = time.time()
            while len(list(killed.glob("shards/*/shard.json"))) == before and p.poll() is None \
                    and time.time() - t0 < 240:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.0))  # a random point after the run got going
            children = psutil.Process(p.pid).children(recursive=True) if p.poll() is None else []
            p.send_signal(signal.SIGKILL)
            p.wait()
            gone, alive = psutil.wait_procs(children, timeout=10)
            left += alive
            assert not alive, f"kill {kill}: {len(alive)} worker process(es) outlived the parent"
        assert _render_cli(fits, killed, 2).wait(timeout=300) == 0
    finally:
        for proc in left:
            proc.kill()

    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.name != "run.json"}

    a, b = files(clean), files(killed)
    assert sorted(a) == sorted(b)
    assert [name for name in a if a[name] != b[name]] == []


# ---- 11. bad input files: one-line errors or counted skips, never a traceback ----------------
def test_bad_keypoint_files_are_one_line_errors_or_counted_skips(tmp_path):
    from syrip_gen.coco import keypoint_problem, load_coco, write_coco
    from syrip_gen.fit.io import load_skeletons

    img = {"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}
    kps = [50.0, 50.0, 2] * 17
    for images, anns, match in (
            (None, [], "'images' must be a list, got NoneType"),
            ([img], None, "'annotations' must be a list, got NoneType"),
            ([img], [{"id": 1, "image_id": [1], "keypoints": kps}], r"image_id \[1\] is not an integer"),
            ([dict(img, id=True)], [], "image id True is not an integer")):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"images": images, "annotations": anns}))
        with pytest.raises(UserError, match=match):
            load_coco(path)
    assert keypoint_problem([str(v) for v in kps]) == "keypoints must be numbers, got str '50.0'"
    assert keypoint_problem(["abc"] * 51).startswith("keypoints must be numbers")
    good = tmp_path / "good.json"
    write_coco(good, [img, dict(img, id=2)], [{"id": 1, "image_id": 1, "keypoints": ["x"] * 51},
                                               {"id": 2, "image_id": 2, "keypoints": kps}])
    sk = load_skeletons(good)
    assert [s.problem for s in sk] == ["keypoints must be numbers, got str 'x'", None]


# ---- 12. pipelines: paths from where the user is, unknown names refused, checked before running ----
def _spec_file(folder, steps: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "skel.json").write_text('{"images": [], "annotations": []}')
    spec = folder / "spec.yaml"
    spec.write_text("name: t\nsteps:\n" + steps)
    return spec


def test_pipeline_paths_resolve_from_the_spec_folder_and_the_current_directory(tmp_path, monkeypatch):
    from syrip_gen import pipeline
    from syrip_gen.commands.pipeline import parse_overrides

    spec = _spec_file(tmp_path / "specs", "  - {name: fit, kind: fit, inputs: {skeletons: data/skel.json}}\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.json").write_text("{}")
    monkeypatch.chdir(work)
    s = pipeline.load_spec("../specs/spec.yaml")
    assert s.steps[0].inputs == {"skeletons": str(tmp_path / "specs" / "data" / "skel.json")}
    assert s.out == work / "runs" / "t"  # no out in the spec: runs/<name> where the user is
    s = pipeline.load_spec(spec, out="myrun", input_overrides=parse_overrides(["fit.skeletons=mine.json"], False))
    assert s.out == work / "myrun" and s.steps[0].inputs == {"skeletons": str(work / "mine.json")}
    assert pipeline.plan(s)[0].inputs["skeletons"] == work / "mine.json"


def test_pipeline_refuses_unknown_steps_and_later_steps_as_inputs(tmp_path, monkeypatch):
    from syrip_gen import pipeline
    from syrip_gen.commands.pipeline import parse_overrides

    spec = _spec_file(tmp_path / "s", "  - {name: fit, kind: fit, inputs: {skeletons: data/skel.json}}\n"
                                      "  - {name: filter, kind: filter, inputs: {dataset: render}}\n"
                                      "  - {name: render, kind: render, inputs: {fits: fit}}\n")
    (tmp_path / "s" / "render").mkdir()  # a folder named like the later step: not silently used
    monkeypatch.chdir(tmp_path / "s")
    (tmp_path / "s" / "render2").mkdir()
    with pytest.raises(UserError, match="input dataset=render names a step that does not come before it"):
        pipeline.plan(pipeline.load_spec(spec))
    with pytest.raises(UserError, match="--set: no step named 'nostep'"):
        pipeline.load_spec(spec, overrides=parse_overrides(["nostep.x=2"]))
    with pytest.raises(UserError, match="--input: no step named 'fitt'"):
        pipeline.load_spec(spec, input_overrides=parse_overrides(["fitt.skeletons=x"], False))
    with pytest.raises(UserError, match=r"--set render.variants: the value '\[2' is not valid YAML"):
        parse_overrides(["render.variants=[2"])


@pytest.mark.parametrize("steps, message", [
    ("  - {name: fit, kind: fit, inputs: {skeletons: data/skel.json}, config: {seeed: 1}}\n",
     "step 'fit': fit config: unknown key.s. seeed"),
    ("  - {name: fit, kind: fit, inputs: {skeletons: data/skel.json}}\n"
     "  - {name: render, kind: render, inputs: {fits: fit}, config: {variants: abc}}\n",
     "step 'render': render config: variants must be an integer, got 'abc'"),
    ("  - {name: fit, kind: fit, inputs: {skeletons: data/skel.json}}\n"
     "  - {name: render, kind: render, inputs: {fitz: fit}}\n",
     "step 'render': a render step needs inputs.fits"),
    ("  - {name: fit, kind: fit, inputs: {skeletons: data/skel.json}}\n"
     "  - {name: train, kind: train, inputs: {real: fit}, config: {task: pose2d, max_steps: -3}}\n",
     "step 'train': train config: max_steps must be >= 1, got -3"),
    ("  - {name: fit, kind: fit, inputs: {skeletons: data/skel.json}}\n"
     "  - {name: ev, kind: evaluate, inputs: {model: fit, dataset: fit}, config: {boxez: gt}}\n",
     "step 'ev': evaluate config: unknown key.s. boxez"),
])
def test_pipeline_dry_run_checks_every_step_before_any_runs(tmp_path, monkeypatch, steps, message):
    from syrip_gen import pipeline

    ran = []
    monkeypatch.setattr(pipeline, "STAGES", {k: lambda c, i, o, k=k: ran.append(k) or {} for k in pipeline.STAGES})
    spec = pipeline.load_spec(_spec_file(tmp_path / "s", steps), out=tmp_path / "run")
    for dry in (True, False):
        with pytest.raises(UserError, match=message):
            pipeline.run(spec, dry=dry, echo=lambda s: None)
    assert ran == []  # not even the valid first step ran


def test_render_never_takes_over_a_fit_folder(fits, tmp_path, monkeypatch):
    """``render --out FITS`` (the fits' own folder, which holds fit's run.json) is refused, even
    with --force: replacing its run.json would orphan the fits."""
    from syrip_gen.runfolder import record

    use_fake_maker(monkeypatch)
    record(fits.parent, "fitkey", "fit")
    before = _tree(fits.parent)
    for cfg in (CFG, replace(CFG, run=replace(CFG.run, force=True))):
        with pytest.raises(UserError, match="holds a `syrip-gen fit` run; refusing to write a render run"):
            render_dataset(fits, fits.parent, cfg)
    assert _tree(fits.parent) == before
