"""Real servers on loopback for the remote tests: an HTTP file server that counts what it sends
(with modes that misbehave the ways real servers do) and moto's S3 server.

Both listen on 127.0.0.1 on a free port and stop when the test ends; nothing reaches another
address.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

#: ``range``: a good server; ``norange``: answers every GET with the whole object (200);
#: ``forbidden``/``missing``: 403/404 for everything; ``changing``: the object grows by 1 KiB
#: after every request; ``truncating``: announces the full range, sends half, drops the connection;
#: ``short``: a consistent 206 whose body and Content-Length are half the range
Mode = Literal["range", "norange", "forbidden", "missing", "changing", "truncating", "short"]
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Served:
    """Requests answered and body bytes sent, per path and in all."""

    requests: int = 0
    bytes: int = 0
    by_path: dict[str, list[int]] = field(default_factory=dict)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range header)

    def add(self, method: str, path: str, range_header: str, nbytes: int) -> None:
        self.requests += 1
        self.bytes += nbytes
        entry = self.by_path.setdefault(path, [0, 0])
        entry[0] += 1
        entry[1] += nbytes
        self.log.append((method, path, range_header))


class HttpFiles:
    """Serves the files under ``root`` at ``url``; ``mode`` and ``served`` may change between requests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mode: Mode = "range"
        self.served = Served()
        self.lock = threading.Lock()
        self._growth: dict[str, int] = {}
        files = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read :attr:`HttpFiles.served`."""

            def do_HEAD(self) -> None:
                files.answer(self, head=True)

            def do_GET(self) -> None:
                files.answer(self, head=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reset(self) -> None:
        with self.lock:
            self.served = Served()

    def content(self, path: str) -> bytes | None:
        local = self.root / unquote(path.split("?", 1)[0]).lstrip("/")
        if not local.is_file():
            return None
        data = local.read_bytes()
        return data + b"\0" * self._growth.get(path, 0)

    def answer(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        path = handler.path
        range_header = handler.headers.get("Range", "")
        mode = self.mode
        if mode in ("forbidden", "missing"):
            self._send(handler, 403 if mode == "forbidden" else 404, {}, b"", head, path, range_header)
            return
        data = self.content(path)
        if data is None:
            self._send(handler, 404, {}, b"", head, path, range_header)
            return
        if mode == "changing":
            with self.lock:
                self._growth[path] = self._growth.get(path, 0) + 1024
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        match = _RANGE.match(range_header)
        if head or match is None or mode == "norange":
            self._send(handler, 200, {"ETag": etag, "Accept-Ranges": "none" if mode == "norange" else "bytes"},
                       data, head, path, range_header)
            return
        start = int(match[1])
        end = min(int(match[2]) + 1 if match[2] else len(data), len(data))
        if start >= len(data):
            self._send(handler, 416, {"Content-Range": f"bytes */{len(data)}"}, b"", head, path, range_header)
            return
        body = data[start:end]
        headers = {"ETag": etag, "Content-Range": f"bytes {start}-{end - 1}/{len(data)}"}
        if mode == "truncating":
            self._send(handler, 206, headers, body, head, path, range_header, cut=len(body) // 2)
            return
        if mode == "short":
            body = body[: len(body) // 2]
        self._send(handler, 206, headers, body, head, path, range_header)

    def _send(self, handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes, head: bool,
              path: str, range_header: str, cut: int | None = None) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        if cut is not None:
            handler.send_header("Connection", "close")
        handler.end_headers()
        sent = b"" if head else body if cut is None else body[:cut]
        try:
            handler.wfile.write(sent)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (a refused 200)
            pass
        with self.lock:
            self.served.add(handler.command, path, range_header, len(sent))
        if cut is not None:
            handler.close_connection = True

    def __enter__(self) -> HttpFiles:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a free port) with dummy credentials in the environment;
    yields its endpoint URL (also in ``AWS_ENDPOINT_URL``)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {key: os.environ.get(key) for key in _AWS_ENV}
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(key, None)
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


_AWS_ENV = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_PROFILE",
            "AWS_SESSION_TOKEN")


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
