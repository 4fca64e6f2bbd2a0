"""Faults from the third tour of bad inputs (issue 34; reproductions in ../shared/faults/tour-3.md by case
id): pipeline steps that must never reuse an old run's work, spec validation before any work, filter on
clips, stats on empty sets, benchmark and learn-prior inputs. Each test failed before its fix."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from syrip_gen import pipeline
from syrip_gen.errors import UserError


def _write_spec(tmp_path: Path, body: str, name: str = "spec.yaml") -> Path:
    spec = tmp_path / name
    spec.write_text(f"name: t\nout: {tmp_path / 'run'}\nsteps:\n{body}")
    return spec


def _quiet(spec, **kw):
    return pipeline.run(spec, echo=lambda s: None, **kw)


# ---- C50: a new step key never resumes an old run's checkpoints ---------------------------------------
@pytest.fixture()
def resuming_train(monkeypatch):
    """A train stage that, like pose_models.train, continues from the latest checkpoint in its
    folder; records what it found there, and fails after its checkpoint when asked to."""
    seen = []

    def stage(config, inputs, out):
        ckpts = out / "checkpoints"
        seen.append(sorted(p.name for p in ckpts.glob("*.pt")))
        ckpts.mkdir(exist_ok=True)
        (ckpts / f"step_{config['max_steps']:07d}.pt").write_text(json.dumps(config))
        if stage.crash:
            stage.crash = False
            raise KeyboardInterrupt
        return {"checkpoint": str(ckpts / f"step_{config['max_steps']:07d}.pt")}

    stage.crash = False
    monkeypatch.setitem(pipeline.STAGES, "train", stage)
    return stage, seen


def _train_spec(tmp_path, data, steps=2):
    return _write_spec(tmp_path, f"  - {{name: train, kind: train, inputs: {{real: {data}}}, "
                                 f"config: {{task: lifter, max_steps: {steps}}}}}\n")


def _data(tmp_path, n=2):
    data = tmp_path / "data" / "annotations"
    data.mkdir(parents=True, exist_ok=True)
    (data / "person_keypoints_train_infant.json").write_text(json.dumps({"images": list(range(n))}))
    return tmp_path / "data"


def test_c50_changed_training_data_retrains_from_scratch(tmp_path, resuming_train):
    stage, seen = resuming_train
    spec = _train_spec(tmp_path, _data(tmp_path))
    _quiet(pipeline.load_spec(spec))
    _data(tmp_path, n=1)  # the training data changed: a new step key
    records = _quiet(pipeline.load_spec(spec))
    assert records[0]["status"] == "ran"
    assert seen == [[], []], "the new key resumed the old run's checkpoint"


def test_c50_an_interrupted_step_resumes_its_own_work_but_not_after_its_key_changed(tmp_path, resuming_train):
    stage, seen = resuming_train
    data = _data(tmp_path)
    stage.crash = True
    with pytest.raises(KeyboardInterrupt):
        _quiet(pipeline.load_spec(_train_spec(tmp_path, data)))
    _quiet(pipeline.load_spec(_train_spec(tmp_path, data)))  # same key: resumes its own checkpoint
    assert seen == [[], ["step_0000002.pt"]]
    stage.crash = True
    with pytest.raises(KeyboardInterrupt):
        _quiet(pipeline.load_spec(_train_spec(tmp_path, data, steps=5)))
    assert seen[-1] == []  # the finished key-2 run's checkpoints were not continued
    _quiet(pipeline.load_spec(_train_spec(tmp_path, data, steps=3)))  # interrupted key-5 work: not continued
    assert seen[-1] == []
    assert sorted(p.name for p in (tmp_path / "run" / "train" / "checkpoints").iterdir()) == ["step_0000003.pt"]


def test_c50_a_train_folder_of_unrecorded_files_is_refused_not_resumed_or_deleted(tmp_path, resuming_train):
    stage, seen = resuming_train
    mine = tmp_path / "run" / "train" / "checkpoints" / "step_0000009.pt"
    mine.parent.mkdir(parents=True)
    mine.write_text("someone's model")
    with pytest.raises(UserError, match="refusing to resume or delete them"):
        _quiet(pipeline.load_spec(_train_spec(tmp_path, _data(tmp_path))))
    assert seen == [] and mine.read_text() == "someone's model"


def test_c50_real_train_step_retrains_when_its_data_changed(tmp_path, capsys):
    """The real train adapter (a small lifter): the reproduction of tour-3 C50 said "resuming ... at
    step 2", did 0 steps and kept the old checkpoint."""
    from pose_models.synthetic import make_dataset

    data = make_dataset(tmp_path / "data", n=8)
    spec = _write_spec(tmp_path, f"""  - {{name: train, kind: train, inputs: {{real: {data}}},
     config: {{task: lifter, lifter_hidden: 16, batch_size: 4, max_steps: 2, warmup_steps: 1, workers: 0,
               device: cpu, ckpt_every: 2}}}}
""")
    _quiet(pipeline.load_spec(spec))
    ckpt = tmp_path / "run" / "train" / "checkpoints" / "step_0000002.pt"
    before = ckpt.read_bytes()
    ann = data / "annotations" / "person_keypoints_train_infant.json"
    d = json.loads(ann.read_text())
    keep = {im["id"] for im in d["images"][:4]}
    d["images"] = [im for im in d["images"] if im["id"] in keep]
    d["annotations"] = [a for a in d["annotations"] if a["image_id"] in keep]
    ann.write_text(json.dumps(d))
    capsys.readouterr()
    records = _quiet(pipeline.load_spec(spec))
    assert records[0]["status"] == "ran"
    assert "resuming" not in capsys.readouterr().out
    assert ckpt.read_bytes() != before
