"""The review page's local web server (standard library ``http.server``, one thread per request).

Why: a person confirms the renders the gates let through (and may rescue ones they rejected)
faster in a browser grid than in an image viewer. The server only serves the dataset's
images, its annotations and the filter report as JSON, and saves each decision the moment it
is made (``decisions.record_decision``: locked, atomic), so a reload or a crash loses nothing.

Routes: ``GET /`` the page, ``GET /static/<file>``, ``GET /images/<file_name>``,
``GET /api/dataset`` (images, keypoints, automatic verdicts, decisions),
``GET /api/decisions``, ``POST /api/decision`` ``{"image_id", "decision": "accept"|"reject"|null}``.
Binds to 127.0.0.1 by default.
"""
from __future__ import annotations

import json
import logging
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from syrip_gen.coco import KEYPOINT_NAMES, SKELETON, dataset_json, dataset_root, load_coco
from syrip_gen.errors import UserError
from syrip_gen.review.decisions import decisions_path, load_decisions, record_decision

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024


class ReviewState:
    """What the server serves: one dataset's images, annotations and filter verdicts."""

    def __init__(self, dataset: str | Path):
        coco_path = dataset_json(dataset)
        self.coco = load_coco(coco_path)
        self.root = dataset_root(coco_path)
        self.image_dir = self.coco.image_dir()
        if not self.image_dir.is_dir():
            raise UserError(f"{self.root}: no images/ directory beside annotations/; is this a dataset in SyRIP layout?")
        self.decisions_file = decisions_path(self.root)
        load_decisions(self.decisions_file)  # a malformed file stops us before serving
        self.files = {img.get("file_name"): img for img in self.coco.images.values()}
        self.verdicts = self._verdicts()

    def _verdicts(self) -> dict[str, dict]:
        path = self.root / "filter" / "report.json"
        if not path.exists():
            return {}
        try:
            report = json.loads(path.read_text())
            return {str(r["image_id"]): {"auto": r["auto"], "reasons": r["reasons"]} for r in report["images"]}
        except (json.JSONDecodeError, KeyError, TypeError):
            log.warning("%s: unreadable filter report; showing no automatic verdicts", path)
            return {}

    def dataset(self) -> dict:
        anns: dict = {}
        for a in self.coco.annotations:
            anns.setdefault(a["image_id"], []).append({"keypoints": a.get("keypoints"), "bbox": a.get("bbox")})
        images = [{"id": iid, "file_name": img.get("file_name"), "width": img.get("width"),
                   "height": img.get("height"), "posture": img.get("posture"),
                   "annotations": anns.get(iid, []), "auto": self.verdicts.get(str(iid))}
                  for iid, img in self.coco.images.items()]
        return {"name": self.root.name, "images": images, "skeleton": SKELETON,
                "keypoint_names": KEYPOINT_NAMES, "decisions": load_decisions(self.decisions_file),
                "has_report": bool(self.verdicts)}


def make_handler(state: ReviewState):
    class Handler(BaseHTTPRequestHandler):
        server_version = "syrip-gen-review"

        def log_message(self, fmt, *args):  # quiet: the console shows the URL, not every GET
            log.debug(fmt, *args)

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj) -> None:
            self._send(code, json.dumps(obj, sort_keys=True).encode(), "application/json")

        def _file(self, path: Path) -> None:
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send(HTTPStatus.OK, path.read_bytes(), ctype)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = unquote(urlparse(self.path).path)
            try:
                if path in ("/", "/index.html"):
                    return self._file(STATIC / "index.html")
                if path.startswith("/static/"):
                    f = STATIC / path[len("/static/"):]
                    if f.parent == STATIC and f.is_file():
                        return self._file(f)
                elif path.startswith("/images/"):
                    name = path[len("/images/"):]
                    if name in state.files and (state.image_dir / name).is_file():
                        return self._file(state.image_dir / name)
                elif path == "/api/dataset":
                    return self._json(HTTPStatus.OK, state.dataset())
                elif path == "/api/decisions":
                    return self._json(HTTPStatus.OK, {"decisions": load_decisions(state.decisions_file)})
            except UserError as err:
                return self._json(HTTPStatus.CONFLICT, {"error": str(err)})
            self._json(HTTPStatus.NOT_FOUND, {"error": f"not found: {path}"})

        def do_POST(self):  # noqa: N802
            if urlparse(self.path).path != "/api/decision":
                return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            try:
                n = int(self.headers.get("Content-Length") or 0)
                if n > MAX_BODY:
                    return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
                body = json.loads(self.rfile.read(n) or b"{}")
                iid = body["image_id"]
                decision = body.get("decision")
                if not isinstance(iid, (int, str)):
                    raise TypeError
            except (ValueError, KeyError, TypeError, AttributeError):
                return self._json(HTTPStatus.BAD_REQUEST, {"error": "expected JSON {image_id, decision}"})
            img = state.coco.images.get(iid)
            if img is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no image with id {iid!r} in the dataset"})
            try:
                decisions = record_decision(state.decisions_file, iid, decision, file_name=img.get("file_name"),
                                            reviewer=body.get("reviewer"))
            except UserError as err:  # malformed file on disk, or a bad decision value
                return self._json(HTTPStatus.CONFLICT, {"error": str(err)})
            self._json(HTTPStatus.OK, {"image_id": iid, "decision": decision, "decisions": decisions})

    return Handler


def make_server(dataset: str | Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A ready (not yet serving) server for a dataset; ``port=0`` picks a free port
    (read it from ``server.server_address``)."""
    state = ReviewState(dataset)
    try:
        server = ThreadingHTTPServer((host, port), make_handler(state))
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror}); pick another --port") from None
    server.daemon_threads = True
    server.state = state
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="review-server", daemon=True)
    t.start()
    return t
