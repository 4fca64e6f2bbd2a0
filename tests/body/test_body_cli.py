"""`syrip-gen body preview|export|convert` through ``syrip_gen.cli.main``: outputs, one-line
errors with exit code 2, and a ``--help`` that never imports torch.

Issue 2."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from syrip_gen.cli import COMMANDS, main
from syrip_gen.paths import REPO_ROOT
from test_body_smpl import FACE_IDS, tiny_model, write_chumpy_pickle


def _error(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert match in err and err.startswith("syrip-gen body: error:"), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    model = tiny_model()
    write_chumpy_pickle(model, d / "tiny.pkl")
    (d / "nopose.pkl").write_bytes(pickle.dumps({k: v for k, v in model.items() if k != "posedirs"}))
    (d / "junk.pkl").write_bytes(b"\x00not a pickle at all" * 10)
    return d


def test_bad_input_gives_one_line_errors(capsys, tiny_files, tmp_path):
    out = str(tmp_path / "x.png")
    _error(capsys, ["body", "preview", "--body", "smurf", "--out", out], "unknown body model 'smurf'")
    _error(capsys, ["body", "preview", "--body", "smil", "--out", out], "needs its model file")
    _error(capsys, ["body", "export", "--body", "smil", "--body-path", str(tmp_path / "none.pkl"),
                    "--out", str(tmp_path / "x.obj")], "not found")
    _error(capsys, ["body", "preview", "--body", "smil", "--body-path", str(tiny_files / "junk.pkl"),
                    "--out", out], "not a readable SMIL/SMPL model pickle")
    _error(capsys, ["body", "convert", str(tiny_files / "nopose.pkl"), "--out", str(tmp_path / "m.npz")],
           "model key 'posedirs' is missing")
    _error(capsys, ["body", "preview", "--uv-obj", "x.obj", "--out", out], "--uv-obj is for SMIL/SMPL")
    _error(capsys, ["body", "preview", "--age", "13", "--out", out], "outside 0-12 months")
    _error(capsys, ["body", "export", "--age", "-1", "--out", str(tmp_path / "x.obj")], "outside 0-12 months")
    _error(capsys, ["body", "preview", "--pose", "cartwheel", "--out", out], "no such pose or file")
    (tmp_path / "bad_pose.json").write_text(json.dumps({"pose": [[0, 0, 0]] * 23}))
    _error(capsys, ["body", "preview", "--pose", str(tmp_path / "bad_pose.json"), "--out", out],
           "expected 24x3")
    # a real SMPL-format model, but SMPL's face vertex ids do not exist on this tiny mesh
    _error(capsys, ["body", "preview", "--body", "smil", "--body-path", str(tiny_files / "tiny.pkl"),
                    "--out", out], "face keypoint vertices")
    assert not os.path.exists(out) and not (tmp_path / "m.npz").exists()


def test_convert_writes_npz(capsys, tiny_files, tmp_path):
    assert main(["body", "convert", str(tiny_files / "tiny.pkl"), "--out", str(tmp_path / "m.npz")]) == 0
    with np.load(tmp_path / "m.npz") as z:
        assert sorted(z.files) == sorted(["v_template", "shapedirs", "posedirs", "J_regressor",
                                          "weights", "kintree_table", "f"])
        assert z["shapedirs"].shape == (288, 3, 20)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left behind


def _use_body(monkeypatch, body):
    import syrip_gen.commands.body as cmd

    monkeypatch.setattr(cmd, "load_cli_body", lambda args: body)


def test_preview_and_export_anny(capsys, monkeypatch, anny_body, tmp_path):
    import cv2
    import trimesh

    _use_body(monkeypatch, anny_body)  # the session's Anny instead of a second 10 s load
    png = tmp_path / "infant.png"
    assert main(["body", "preview", "--pose", "supine-kicking", "--size", "128", "--out", str(png)]) == 0
    img = cv2.imread(str(png))
    assert img.shape == (128, 256, 3)
    for panel in (img[:, :128], img[:, 128:]):  # a body in each view, not just background
        assert (np.abs(panel.astype(int) - panel[-1, -1].astype(int)).sum(-1) > 40).mean() > 0.05
    obj = tmp_path / "infant.obj"
    pose = np.zeros((24, 3))
    pose[4] = [1.5, 0, 0]
    (tmp_path / "pose.json").write_text(json.dumps(pose.tolist()))
    assert main(["body", "export", "--pose", str(tmp_path / "pose.json"), "--age", "3", "--out", str(obj)]) == 0
    text = obj.read_text()
    assert "\nvt " in text
    mesh = trimesh.load(obj, process=False, force="mesh")
    topo = anny_body.topology()
    assert len(mesh.faces) == len(topo.faces)
    height = mesh.vertices[:, 1].max() - mesh.vertices[:, 1].min()
    assert 0.55 < height < 0.66, height  # a 3-month-old's ~61 cm


def test_preview_and_export_smil_without_uvs_and_without_gl(capsys, monkeypatch, tiny_files, tmp_path):
    import trimesh

    import syrip_gen.commands.body as cmd
    from syrip_gen.body.smpl_body import SmplBody

    _use_body(monkeypatch, SmplBody.from_file(tiny_files / "tiny.pkl", face_vertex_ids=FACE_IDS))
    # the renderer (pyrender/EGL) draws a mesh that has no texture coordinates
    assert main(["body", "preview", "--body", "smil", "--size", "96", "--out", str(tmp_path / "r.png")]) == 0
    assert "using the OpenCV painter" not in capsys.readouterr().err
    import cv2

    img = cv2.imread(str(tmp_path / "r.png"))
    assert img.shape == (96, 192, 3) and (img[20:].reshape(-1, 3) < 200).any(-1).mean() > 0.002
    calls = []
    import syrip_gen.drawing as drawing

    monkeypatch.setattr(drawing, "paint_views", lambda *a, **k: calls.append(1) or np.zeros((96, 192, 3), np.uint8))
    monkeypatch.setitem(sys.modules, "syrip_gen.render.pixels.preview", None)  # no renderer -> painter
    assert main(["body", "preview", "--body", "smil", "--size", "96", "--out", str(tmp_path / "s.png")]) == 0
    assert calls == [1] and (tmp_path / "s.png").stat().st_size > 0
    from syrip_gen.posture_library import load_library

    library_name = load_library()[0].name  # posture-library names work as --pose too
    assert main(["body", "export", "--body", "smil", "--pose", library_name, "--out", str(tmp_path / "s.obj")]) == 0
    assert "no texture coordinates" in capsys.readouterr().out
    text = (tmp_path / "s.obj").read_text()
    assert text.count("\nv ") == 288 and "\nvt " not in text  # every model vertex, in order
    mesh = trimesh.load(tmp_path / "s.obj", process=False, force="mesh")
    assert len(mesh.faces) == 120


def test_painter_draws_a_shaded_body(anny_body):
    import torch

    from syrip_gen.drawing import paint_views

    v = anny_body(torch.zeros(1, 24, 3), anny_body.shape_for_age(torch.tensor([6.0])),
                  with_vertices=True).vertices[0].numpy()
    img = paint_views(v, anny_body.topology().body_faces, size=96)
    assert img.shape == (96, 192, 3) and img.dtype == np.uint8
    front, side = (img[:, :96] != 235).any(-1), (img[:, 96:] != 235).any(-1)
    assert front.mean() > 1.3 * side.mean() > 0.05  # T-pose arms make the front view wider (ratio 1.47)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # shaded, not a flat silhouette


def test_help_lists_commands_without_importing_torch():
    code = ("import sys, contextlib, io\nfrom syrip_gen.cli import main\nbuf = io.StringIO()\n"
            "for argv in (['--help'], ['body', '--help'], ['body', 'preview', '--help']):\n"
            "    with contextlib.redirect_stdout(buf):\n"
            "        try: main(argv)\n"
            "        except SystemExit: pass\n"
            "print(buf.getvalue())\nprint('torch' in sys.modules, 'numpy' in sys.modules)")
    env = dict(os.environ, COLUMNS="200")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=REPO_ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[-1] == "False False", lines[-1]
    for name, (help_text, _) in COMMANDS.items():  # one line per command: name, then its help
        assert any(line.split()[:1] == [name] and help_text in line for line in lines), name
    for action in ("preview", "export", "convert"):
        assert any(line.strip().startswith(action) for line in lines), action
    assert "--uv-obj" in res.stdout and "--age" in res.stdout
