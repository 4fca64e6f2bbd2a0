"""The README a newcomer reads (issue 33): short, every command in it real, every link alive, and
its "your own data" commands run from a clean checkout at toy size."""
from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

from syrip_gen import cli
from syrip_gen.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))


def fenced_commands(text: str) -> list[list[str]]:
    """The shell lines of the ```bash blocks (continuations joined, comments dropped), split."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def syrip_gen_commands(text: str) -> list[list[str]]:
    """argv of each fenced `syrip-gen` command line (``&&`` chains split)."""
    out = []
    for words in fenced_commands(text):
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            head, words = words[:cut], words[cut + 1:]
            if head and Path(head[0]).name == "syrip-gen":
                out.append(head[1:])
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_is_a_page_a_newcomer_reads():
    text = README.read_text()
    assert len(text.splitlines()) <= 160
    titles = re.findall(r"^## (.+)$", text, flags=re.M)
    assert not [t for t in titles if re.search(r"issue \d+", t, flags=re.I)], "sections by topic, not by issue"
    assert "make demo" in text and "make test" in text and "![" in text


def test_make_targets_in_the_readme_exist():
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.M))
    named = {w[1] for w in fenced_commands(README.read_text()) if w[0] == "make"}
    named |= set(re.findall(r"`make ([\w-]+)`", README.read_text()))
    assert named and named <= targets, named - targets


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_every_fenced_syrip_gen_command_parses(path):
    """Each command line names a real command with real options (argparse, without running it)."""
    commands = syrip_gen_commands(path.read_text())
    if path == README:
        assert len(commands) >= 5
    for argv in commands:
        try:
            cli.build_parser(argv).parse_args(argv)
        except SystemExit as err:
            pytest.fail(f"{path.name}: `syrip-gen {shlex.join(argv)}` does not parse (exit {err.code})")


def test_the_command_table_lists_every_command():
    text = README.read_text()
    table = text[text.index("## The tool"):].split("\n## ")[0]
    cells = re.findall(r"^\| `([^`]+)`", table, flags=re.M)
    listed = set()
    for cell in cells:  # `train / evaluate / predict`: three commands; `body preview / export`: one
        pieces = [p.strip() for p in cell.split(" / ")]
        listed |= set(pieces) if " " not in pieces[0] else {pieces[0].split()[0]}
    assert listed == set(cli.COMMANDS), (sorted(set(cli.COMMANDS) - listed), sorted(listed - set(cli.COMMANDS)))


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file) if file else path
        assert dest.exists(), f"{path.name}: link to {target}: no such file"
        if anchor and dest.suffix == ".md":
            anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(), flags=re.M)}
            assert anchor in anchors, f"{path.name}: link to {target}: no such heading"


def _tiny_set(real: Path, out: Path, n: int) -> Path:
    """The first ``n`` annotated photos of a real set, in the SyRIP layout (tests' tmp only)."""
    coco_path = next((real / "annotations").glob("person_keypoints_*.json"))
    coco = json.loads(coco_path.read_text())
    images = coco["images"][:n]
    ids = {im["id"] for im in images}
    (out / "annotations").mkdir(parents=True)
    (out / "images").mkdir()
    for im in images:
        shutil.copy(real / "images" / im["file_name"], out / "images" / im["file_name"])
    sub = {**coco, "images": images, "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}
    (out / "annotations" / coco_path.name).write_text(json.dumps(sub))
    return out


# toy size: what each README command gets added here (the README's own arguments stay as written)
TOY = {"fit": ["--no-overlays"], "render": ["--variants", "1", "--width", "160", "--height", "120", "--workers", "1"]}


def test_your_own_data_commands_run_at_toy_size(syrip_train, tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Your own data"):].split("\n## ")[0]
    commands = syrip_gen_commands(section)
    assert [c[0] for c in commands] == ["fit", "backgrounds", "render", "filter", "review"]
    data = _tiny_set(Path(syrip_train), tmp_path / "set", n=3)
    monkeypatch.chdir(tmp_path)  # the README's relative runs/mine/... land in the test's folder
    for argv in commands[:-1]:  # review serves a web page: tests/filter/test_review*.py test it
        argv = [str(data) if a == "path/to/your/set" else a for a in argv] + TOY.get(argv[0], [])
        assert cli.main(argv) == 0, argv
    kept = json.loads(next((tmp_path / "runs/mine/synthetic/annotations").glob("*_filtered_infant.json")).read_text())
    rendered = json.loads(next((tmp_path / "runs/mine/synthetic/annotations").glob("*_train_infant.json")).read_text())
    assert len(rendered["images"]) >= 1 and len(kept["images"]) <= len(rendered["images"])
    assert any((tmp_path / "runs/mine/backgrounds").glob("*.jpg"))
    assert any((tmp_path / "runs/mine/synthetic/photo_textures").iterdir())
