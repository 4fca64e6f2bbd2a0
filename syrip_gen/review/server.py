"""The review page's local web server (standard library ``http.server``, one thread per request).

Why: a person confirms the renders the gates let through (and may rescue ones they rejected)
faster in a browser grid than in an image viewer. The server only serves the dataset's
images, its annotations and the filter report as JSON, and saves each decision the moment it
is made (``decisions.record_decision``: locked, atomic), so a reload or a crash loses nothing.

Routes: ``GET /`` the page, ``GET /static/<file>``, ``GET /images/<file_name>``,
``GET /api/dataset`` (images, keypoints, automatic verdicts, decisions),
``GET /api/decisions``, ``POST /api/decision`` ``{"image_id", "decision": "accept"|"reject"|null}``.
Binds to 127.0.0.1 by default.

Only the review page may write: each server makes a random token, puts it in the page it
serves (``<meta name="review-token">``) and takes a POST only with that token in the
``X-Review-Token`` header. Another web site open in the same browser can send a request to
127.0.0.1 but cannot read the page, so it cannot know the token (and a custom header needs a
CORS preflight this server never grants). A POST whose ``Origin`` is not this server, or
whose ``Host`` is not a loopback name when bound to loopback (DNS rebinding), is refused too.
The body must be a complete JSON object of at most ``MAX_BODY`` bytes with an integer (or the
dataset's string) ``image_id``; the socket times out after ``TIMEOUT_S`` so a client that sends
less than it announced cannot hold a thread, and a decision is only written for a complete request.
"""
from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from syrip_gen.coco import KEYPOINT_NAMES, SKELETON, dataset_json, dataset_root, load_coco
from syrip_gen.errors import UserError
from syrip_gen.review.decisions import DECISIONS, decisions_path, load_decisions, record_decision

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024
TIMEOUT_S = 10.0
TOKEN_HEADER = "X-Review-Token"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


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


def make_handler(state: ReviewState, token: str, loopback_only: bool):
    class Handler(BaseHTTPRequestHandler):
        server_version = "syrip-gen-review"
        timeout = TIMEOUT_S  # socket timeout: a request that stops half-way frees its thread

        def log_message(self, fmt, *args):  # quiet: the console shows the URL, not every GET
            log.debug(fmt, *args)

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client left; nothing to tell it
                self.close_connection = True

        def _json(self, code: int, obj) -> None:
            self._send(code, json.dumps(obj, sort_keys=True).encode(), "application/json")

        def _file(self, path: Path) -> None:
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send(HTTPStatus.OK, path.read_bytes(), ctype)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = unquote(urlparse(self.path).path)
            try:
                if path in ("/", "/index.html"):
                    page = (STATIC / "index.html").read_text().replace("{{REVIEW_TOKEN}}", token)
                    return self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
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

        def _refusal(self) -> str | None:
            """Why this POST may not write (not from our page), or None."""
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            if loopback_only and host not in LOOPBACK:
                return f"Host {host!r} is not this machine"
            origin = self.headers.get("Origin")
            if origin is not None and urlparse(origin).netloc != self.headers.get("Host"):
                return f"Origin {origin!r} is not this review page"
            if not hmac.compare_digest(self.headers.get(TOKEN_HEADER) or "", token):
                return f"missing or wrong {TOKEN_HEADER} (reload the review page)"
            return None

        def _body(self) -> dict | None:
            """The request's JSON object, or None when the length or the body is unusable."""
            try:
                n = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return None
            if not 0 < n <= MAX_BODY:
                return None
            try:
                raw = self.rfile.read(n)
            except OSError:  # timed out or reset: the client gave up, so nothing is written
                return None
            if len(raw) != n:
                return None
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                return None
            return body if isinstance(body, dict) else None

        def do_POST(self):  # noqa: N802
            self.close_connection = True  # one request per connection: an unread body is never parsed
            if urlparse(self.path).path != "/api/decision":
                return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            why = self._refusal()
            if why:
                return self._json(HTTPStatus.FORBIDDEN, {"error": why})
            length = self.headers.get("Content-Length", "")
            if length.strip().isdigit() and int(length) > MAX_BODY:
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
            body = self._body()
            if body is None:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": "expected a complete JSON object "
                                                                    f"of 1-{MAX_BODY} bytes with a valid Content-Length"})
            iid, decision, reviewer = body.get("image_id"), body.get("decision"), body.get("reviewer")
            if isinstance(iid, bool) or not isinstance(iid, (int, str)) or \
                    (decision is not None and decision not in DECISIONS) or \
                    not (reviewer is None or (isinstance(reviewer, str) and len(reviewer) <= 200)):
                return self._json(HTTPStatus.BAD_REQUEST, {
                    "error": "expected {image_id: integer (or the dataset's string id), decision: "
                             "'accept' | 'reject' | null, reviewer: string or null}"})
            img = state.coco.images.get(iid)
            if img is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no image with id {iid!r} in the dataset"})
            try:
                decisions = record_decision(state.decisions_file, iid, decision, file_name=img.get("file_name"),
                                            reviewer=reviewer)
            except UserError as err:  # malformed file on disk, or a bad decision value
                return self._json(HTTPStatus.CONFLICT, {"error": str(err)})
            self._json(HTTPStatus.OK, {"image_id": iid, "decision": decision, "decisions": decisions})

    return Handler


def make_server(dataset: str | Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A ready (not yet serving) server for a dataset; ``port=0`` picks a free port
    (read it from ``server.server_address``)."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: give a port number from 0 (any free port) to 65535")
    state = ReviewState(dataset)
    token = secrets.token_urlsafe(24)
    try:
        server = ThreadingHTTPServer((host, port), make_handler(state, token, host in LOOPBACK))
    except (OSError, OverflowError) as err:
        raise UserError(f"cannot listen on {host}:{port} ({getattr(err, 'strerror', None) or err}); "
                        "pick another --port or --host") from None
    server.daemon_threads = True
    server.state = state
    server.token = token
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="review-server", daemon=True)
    t.start()
    return t
