"""Review server and decisions file: API, concurrent writers, malformed files, bad input.

Issue 5."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from syrip_gen.errors import UserError
from syrip_gen.review.decisions import decisions_path, load_decisions, record_decision
from syrip_gen.review.server import make_server, serve_in_thread, url_of
from helpers.filter_fixtures import skeleton_2d_samples, write_dataset

N = 12


@pytest.fixture()
def dataset(tmp_path):
    write_dataset(tmp_path / "ds", skeleton_2d_samples(N))
    return tmp_path / "ds"


@pytest.fixture()
def server(dataset):
    srv = make_server(dataset, port=0)
    serve_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def page_token(url):
    """The per-run token the server writes into its page (what review.js sends back)."""
    import re

    with urllib.request.urlopen(url, timeout=10) as r:
        return re.search(rb'<meta name="review-token" content="([^"]+)">', r.read()).group(1).decode()


def _post(url, obj, headers=None):
    headers = {"Content-Type": "application/json", "X-Review-Token": page_token(url), **(headers or {})}
    req = urllib.request.Request(url + "api/decision", data=json.dumps(obj).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read(), r.headers.get("Content-Type")


def test_serves_page_images_and_dataset(server):
    url = url_of(server)
    assert url.startswith("http://127.0.0.1:")
    code, body, ctype = _get(url)
    assert code == 200 and b"syrip-gen review" in body and ctype.startswith("text/html")
    code, body, _ = _get(url + "api/dataset")
    data = json.loads(body)
    assert len(data["images"]) == N and len(data["images"][0]["annotations"][0]["keypoints"]) == 51
    code, body, ctype = _get(url + "images/" + data["images"][0]["file_name"])
    assert ctype == "image/jpeg" and body[:2] == b"\xff\xd8"
    for bad in ("images/../annotations/person_keypoints_train_infant.json", "static/../server.py", "nope"):
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(url + bad)
        assert err.value.code == 404


def test_decisions_saved_cleared_and_validated(server, dataset):
    url = url_of(server)
    assert _post(url, {"image_id": 3, "decision": "reject"})[0] == 200
    assert _post(url, {"image_id": 4, "decision": "accept"})[0] == 200
    assert _post(url, {"image_id": 3, "decision": None})[0] == 200  # undo
    saved = load_decisions(decisions_path(dataset))
    assert set(saved) == {"4"} and saved["4"]["decision"] == "accept" and saved["4"]["file_name"] == "syn00004.jpg"
    assert _post(url, {"image_id": 999, "decision": "accept"})[0] == 404
    assert _post(url, {"image_id": 5, "decision": "maybe"})[0] == 400
    assert _post(url, {"decision": "accept"})[0] == 400


def test_concurrent_reviewers_lose_nothing(server, dataset):
    """Many POSTs at once from threads (and a second server on the same dataset): the file
    always parses and holds every image's decision."""
    other = make_server(dataset, port=0)
    serve_in_thread(other)
    urls = [url_of(server), url_of(other)]
    path = decisions_path(dataset)
    stop, seen_bad = threading.Event(), []

    def reader():
        while not stop.is_set():
            if path.exists():
                try:
                    json.loads(path.read_text())
                except json.JSONDecodeError:
                    seen_bad.append(1)

    t = threading.Thread(target=reader)
    t.start()
    jobs = [(urls[k % 2], {"image_id": i, "decision": "accept" if (i + k) % 2 else "reject"})
            for k in range(3) for i in range(1, N + 1)]
    try:
        with ThreadPoolExecutor(8) as pool:
            codes = [c for c, _ in pool.map(lambda j: _post(*j), jobs)]
    finally:
        stop.set()
        t.join()
        other.shutdown()
        other.server_close()
    assert codes == [200] * len(jobs) and not seen_bad
    assert set(load_decisions(path)) == {str(i) for i in range(1, N + 1)}


def test_malformed_decisions_file_never_overwritten(server, dataset):
    path = decisions_path(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"decisions": {"1": "yes"}}')
    code, body = _post(url_of(server), {"image_id": 1, "decision": "accept"})
    assert code == 409 and "malformed" in body["error"] and str(path) in body["error"]
    assert path.read_text() == '{"decisions": {"1": "yes"}}'
    with pytest.raises(UserError, match="malformed review decision"):
        make_server(dataset)
    with pytest.raises(UserError, match="malformed"):
        record_decision(path, 1, "accept")


def test_bad_dataset(tmp_path):
    with pytest.raises(UserError, match="no such dataset"):
        make_server(tmp_path / "missing")
    (tmp_path / "x" / "annotations").mkdir(parents=True)
    with pytest.raises(UserError, match="expected one"):
        make_server(tmp_path / "x")
