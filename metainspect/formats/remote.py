"""Files behind URLs, through fsspec: ranged reads with a small read-ahead, counted.

Imported only when a URL is opened (local commands never import fsspec). Every protocol
fsspec knows works; HTTP(S) goes through fsspec's aiohttp session with metainspect's own
requests, because a checkpoint reader must know what the server answered:

* a range request answered with the whole object (``200``, the server ignores ``Range``) is
  refused unless the whole object was asked for (state files, graphs are read whole), so no
  data shard is ever downloaded whole by surprise;
* the total size in ``Content-Range`` and a strong ``ETag`` are compared with what the object
  had when it was opened, and a body shorter than the range asked for is an error: an object
  replaced or truncated while being read is named as such;
* connection failures, timeouts, 429 and 5xx answers are retried: :data:`ATTEMPTS` attempts
  in all, :data:`BACKOFF` seconds apart; 403/404 are not retried.

S3 (s3fs) and GCS (gcsfs) reads go through fsspec file objects opened without a cache, one
GET per range; s3fs pins the object's ETag (a changed object fails its reads). Their retries
are the backends' own, bounded here for S3 (botocore "standard" mode, :data:`ATTEMPTS`
attempts, no further s3fs loop) and left at gcsfs's bounded default for GCS.

A :class:`RemoteSource` fetches at least :data:`READ_AHEAD` bytes per request (adjacent small
reads, such as tensor after tensor, then cost one request), fetches :data:`TAIL` bytes when a
read reaches the end of an object (a table's footer and, usually, its index block), and keeps
at most :data:`CACHE_LIMIT` bytes of recent responses. Bytes and requests are added to the
:class:`TransferLog` of the :func:`recording` block in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from metainspect.errors import CorruptError, MetainspectError, NotFoundError, WrongKindError
from metainspect.formats.filesystem import FileSystem
from metainspect.formats.source import ByteSource
from metainspect.formats.wire import BytesLike

__all__ = ["EXTRA", "RemoteFileSystem", "RemoteSource", "Transfer", "TransferLog", "recording", "upload"]

#: what to install for URLs
EXTRA = "pip install 'metainspect[remote]'"
#: the smallest request: adjacent small reads after it are served from its response
READ_AHEAD = 64 * 1024
#: bytes fetched when a read reaches the end of an object (footer + index block of a table)
TAIL = 64 * 1024
#: responses kept for later reads (each at most CACHE_BLOCK bytes), oldest dropped first
CACHE_LIMIT = 8 * 1024 * 1024
CACHE_BLOCK = 4 * 1024 * 1024
#: attempts per HTTP request (and botocore's per S3 call) before giving up
ATTEMPTS = 3
#: seconds to wait before the second and third attempts
BACKOFF = (0.25, 1.0)
#: seconds to connect, and to wait for the next bytes of a response
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
#: seconds what a store said about a URL (exists, size) is reused by later lookups
INFO_TTL = 5.0
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")


# -- transfer accounting -------------------------------------------------------------------------
@dataclass
class Transfer:
    """Requests made to one URL and the body bytes received."""

    url: str
    requests: int = 0
    bytes: int = 0
    #: the object's size when it was opened (None when it was never opened)
    size: int | None = None


@dataclass
class TransferLog:
    """What every remote read in a :func:`recording` block cost, by URL."""

    objects: dict[str, Transfer] = field(default_factory=dict)

    def add(self, url: str, requests: int, nbytes: int, size: int | None = None) -> None:
        entry = self.objects.get(url)
        if entry is None:
            entry = self.objects[url] = Transfer(url)
        entry.requests += requests
        entry.bytes += nbytes
        if size is not None:
            entry.size = size

    @property
    def requests(self) -> int:
        return sum(t.requests for t in self.objects.values())

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.objects.values())


_log: ContextVar[TransferLog | None] = ContextVar("metainspect_transfer_log", default=None)


@contextmanager
def recording() -> Iterator[TransferLog]:
    """Count every remote request and byte made inside the block."""
    log = TransferLog()
    token = _log.set(log)
    try:
        yield log
    finally:
        _log.reset(token)


def _count(url: str, requests: int, nbytes: int, size: int | None = None) -> None:
    log = _log.get()
    if log is not None:
        log.add(url, requests, nbytes, size)


# -- filesystems ---------------------------------------------------------------------------------
_filesystems: dict[tuple[str, str], RemoteFileSystem] = {}


def remote_filesystem(url: str, options: Mapping[str, Any]) -> RemoteFileSystem:
    """The filesystem of ``url``'s protocol with ``options`` (one instance per protocol and options)."""
    protocol = url.split("://", 1)[0] if "::" not in url.split("://", 1)[0] else url.rsplit("://", 1)[0]
    key = (protocol, repr(sorted(options.items(), key=lambda item: item[0])))
    found = _filesystems.get(key)
    if found is None:
        found = _filesystems[key] = RemoteFileSystem(url, protocol, dict(options))
    return found


def _import_fsspec() -> Any:
    try:
        import fsspec
    except ImportError:
        raise ImportError(EXTRA) from None
    return fsspec


class RemoteFileSystem(FileSystem):
    """One fsspec filesystem (a protocol with its options) behind the :class:`FileSystem` seam."""

    def __init__(self, url: str, protocol: str, options: dict[str, Any]) -> None:
        self.protocol = protocol
        self.http = protocol in ("http", "https")
        self.listable = not self.http
        try:
            fsspec = _import_fsspec()
            self.fs, _ = fsspec.core.url_to_fs(url, **_with_defaults(protocol, options))
        except ImportError as exc:
            raise MetainspectError(url, f"reading {protocol}:// URLs needs the remote extra: {EXTRA} "
                                        f"({_one_line(exc)})") from None
        except (ValueError, TypeError) as exc:
            raise MetainspectError(url, f"cannot use {protocol}:// with these storage options: {_one_line(exc)}") from None
        if protocol.split("::")[-1] == "s3":
            self.fs.retries = 1  # botocore retries (config above); s3fs's own loop would multiply them
        self._info: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def info(self, url: str) -> dict[str, Any] | None:
        """What the store says about ``url`` (size, type), or None when nothing is there; cached."""
        cached, known = self._cached_info(url)
        if cached:
            return known
        if self.http:
            found: dict[str, Any] | None = _http_head(self.fs, url)
        else:
            try:
                found = self.fs.info(url)
            except FileNotFoundError:
                found = None
            except Exception as exc:  # noqa: BLE001  (backends raise their own errors: named, not hidden)
                raise _error(url, exc) from None
            _count(url, 1, 0)
        self._info[url] = (time.monotonic(), found)
        return found

    def open(self, path: str, *, missing: str = "no such file") -> ByteSource:
        if self.http:
            return HttpSource(self, path, missing)
        return FsspecSource(self, path, missing)

    def isfile(self, path: str) -> bool:
        if self.http and path.endswith("/"):
            return False
        found = self.info(path)
        return found is not None and found.get("type", "file") == "file"

    def isdir(self, path: str) -> bool:
        if self.http and path.endswith("/"):  # HTTP has no directories: a URL ending in "/" is one
            return True
        found = self.info(path)
        return found is not None and found.get("type") == "directory"

    def exists(self, path: str) -> bool:
        return self.isdir(path) or self.info(path) is not None

    def _cached_info(self, url: str) -> tuple[bool, dict[str, Any] | None]:
        found = self._info.get(url)
        if found is None or time.monotonic() - found[0] > INFO_TTL:
            return False, None
        return True, found[1]

    def size(self, path: str) -> int:
        found = self.info(path)
        if found is None:
            raise NotFoundError(path, "no such object")
        return int(found.get("size") or 0)

    def listdir(self, path: str) -> list[str]:
        if not self.listable:
            raise MetainspectError(path, f"{self.protocol}:// cannot list a directory; name the file or checkpoint prefix")
        try:
            names = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            raise NotFoundError(path, "no such directory") from None
        except Exception as exc:  # noqa: BLE001
            raise _error(path, exc) from None
        _count(path, 1, 0)
        return sorted({str(name).rstrip("/").rsplit("/", 1)[-1] for name in names} - {""})

    def glob(self, pattern: str) -> list[str]:
        from glob import has_magic

        if not has_magic(pattern):
            return [pattern] if self.exists(pattern) else []
        if not self.listable:
            raise MetainspectError(pattern, f"{self.protocol}:// cannot list files to match a pattern; name the files")
        try:
            found = self.fs.glob(pattern)
        except Exception as exc:  # noqa: BLE001
            raise _error(pattern, exc) from None
        _count(pattern, 1, 0)
        directory = pattern.rsplit("/", 1)[0]  # names as the pattern spells its directory (patterns
        return sorted(f"{directory}/{str(path).rstrip('/').rsplit('/', 1)[-1]}" for path in found)  # glob one level)

    def join(self, directory: str, *names: str) -> str:
        return super().join(directory.rstrip("/") if not directory.endswith("://") else directory, *names)

    def forget(self, url: str) -> None:
        """Drop what is known about ``url`` and the directories above it (it was just written)."""
        self._info.clear()
        with contextlib.suppress(Exception):  # a backend without a listing cache
            self.fs.invalidate_cache(url)

    def remove(self, urls: Sequence[str]) -> None:
        """Delete objects (best effort: used to clean up after a failed upload)."""
        for url in urls:
            with contextlib.suppress(Exception):  # the upload's own error is the one reported
                self.fs.rm_file(url)
            self.forget(url)


def _with_defaults(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    """Bounded timeouts and retries unless the user set their own."""
    out = dict(options)
    backend = protocol.split("::")[-1]
    if backend == "s3":
        config = dict(out.get("config_kwargs") or {})
        config.setdefault("connect_timeout", CONNECT_TIMEOUT)
        config.setdefault("read_timeout", READ_TIMEOUT)
        config.setdefault("retries", {"max_attempts": ATTEMPTS, "mode": "standard"})
        out["config_kwargs"] = config
    elif backend in ("gs", "gcs"):
        out.setdefault("requests_timeout", READ_TIMEOUT)
    return out


# -- sources -------------------------------------------------------------------------------------
class RemoteSource(ByteSource):
    """An object behind a URL read by ranges (read-ahead, tail, recent responses kept)."""

    def __init__(self, url: str, size: int) -> None:
        self.name = url
        self._size = size
        self._blocks: list[tuple[int, bytes]] = []  # (offset, bytes), oldest first
        self._kept = 0

    @property
    def size(self) -> int:
        return self._size

    def _fetch(self, start: int, end: int) -> bytes:
        """Bytes ``start``..``end`` in one request; CorruptError when fewer come back."""
        raise NotImplementedError

    def read(self, offset: int, length: int) -> BytesLike:
        self._check_range(offset, length)
        if length == 0:
            return b""
        for start, data in reversed(self._blocks):
            if start <= offset and offset + length <= start + len(data):
                return memoryview(data)[offset - start : offset - start + length]
        start, end = offset, offset + length
        if length < READ_AHEAD:
            end = min(self.size, start + READ_AHEAD)
        if end == self.size:
            start = max(0, min(start, self.size - TAIL))
        data = self._fetch_missing(start, end)
        if len(data) <= CACHE_BLOCK:
            self._remember(start, data)
        return memoryview(data)[offset - start : offset - start + length]

    def _fetch_missing(self, start: int, end: int) -> bytes:
        """Bytes ``start``..``end``, fetching only what no kept response holds at either end."""
        head = tail = b""
        for at, data in self._blocks:
            if at <= start < at + len(data) < end:
                head = data[start - at :]
            elif start < at < end <= at + len(data):
                tail = data[: end - at]
        middle = self._fetch(start + len(head), end - len(tail)) if start + len(head) < end - len(tail) else b""
        return head + middle + tail if head or tail else middle

    def _remember(self, start: int, data: bytes) -> None:
        self._blocks.append((start, data))
        self._kept += len(data)
        while self._kept > CACHE_LIMIT and len(self._blocks) > 1:
            self._kept -= len(self._blocks.pop(0)[1])

    def close(self) -> None:
        self._blocks.clear()
        self._kept = 0


class FsspecSource(RemoteSource):
    """An object read through an fsspec file opened without a cache (S3, GCS, any protocol)."""

    def __init__(self, filesystem: RemoteFileSystem, url: str, missing: str) -> None:
        try:
            self._file = filesystem.fs.open(url, "rb", cache_type="none")
            size = int(self._file.size)
        except FileNotFoundError:
            raise NotFoundError(url, missing) from None
        except IsADirectoryError:
            raise NotFoundError(url, "cannot open: is a directory") from None
        except Exception as exc:  # noqa: BLE001
            raise _error(url, exc) from None
        _count(url, 1, 0, size)
        super().__init__(url, size)

    def _fetch(self, start: int, end: int) -> bytes:
        try:
            self._file.seek(start)
            data = bytes(self._file.read(end - start))
        except FileNotFoundError:
            raise NotFoundError(self.name, "no longer exists (deleted while being read)") from None
        except Exception as exc:  # noqa: BLE001
            raise _error(self.name, exc) from None
        _count(self.name, 1, len(data))
        if len(data) != end - start:
            raise _short(self.name, start, end, len(data), self.size)
        return data

    def close(self) -> None:
        super().close()
        self._file.close()


class HttpSource(RemoteSource):
    """An object behind an HTTP(S) URL, read with ``Range`` requests."""

    def __init__(self, filesystem: RemoteFileSystem, url: str, missing: str) -> None:
        info = filesystem.info(url)
        if info is None:
            raise NotFoundError(url, f"{missing} (HTTP 404)")
        self._fs = filesystem.fs
        self._etag = info.get("etag")
        super().__init__(url, int(info["size"]))
        _count(url, 0, 0, self.size)

    def _fetch(self, start: int, end: int) -> bytes:
        whole = start == 0 and end == self.size
        status, headers, body = _http_get(self._fs, self.name, start, end, whole)
        _count(self.name, 1, len(body))
        if status == 416:
            raise CorruptError(self.name, f"bytes {start}..{end} are no longer there: the object shrank below "
                                          f"the {self.size} bytes it had when opened")
        if status == 200 and not whole:
            raise WrongKindError(self.name, "the server ignores HTTP Range requests (it answered with the whole "
                                            f"object, {self.size} bytes); metainspect reads byte ranges: download "
                                            "the files and give their local path")
        if status == 206:
            match = _CONTENT_RANGE.match(headers.get("content-range", ""))
            if match is None or int(match[1]) != start:
                raise CorruptError(self.name, f"the server answered the range {start}..{end} with "
                                              f"Content-Range {headers.get('content-range')!r}")
            if match[3] != "*" and int(match[3]) != self.size:
                raise CorruptError(self.name, f"changed while being read: {self.size} bytes when opened, "
                                              f"{int(match[3])} now")
        etag = _strong(headers.get("etag"))
        if etag and self._etag and etag != self._etag:
            raise CorruptError(self.name, f"changed while being read (ETag {self._etag} when opened, {etag} now)")
        if len(body) != end - start:
            raise _short(self.name, start, end, len(body), self.size)
        return body


def _short(url: str, start: int, end: int, got: int, size: int) -> CorruptError:
    return CorruptError(url, f"truncated: asked for bytes {start}..{end} of {size}, received {got} "
                             "(the object changed or the connection was cut)")


# -- HTTP requests -------------------------------------------------------------------------------
def _strong(etag: str | None) -> str | None:
    return etag if etag and not etag.startswith("W/") else None


def _http_head(fs: Any, url: str) -> dict[str, Any] | None:
    """Size and ETag of ``url`` (a HEAD; a ``Range: bytes=0-0`` GET when HEAD gives no size).

    A redirect to the same URL with a ``/`` added marks a directory (as file servers answer);
    other redirects are followed. URLs holding glob characters or a query are never requested:
    they stand for patterns (V1 shard sets), not objects.
    """
    if any(char in url.split("://", 1)[-1] for char in "?*["):
        return None
    status, headers, _ = _run(fs, url, "HEAD", {}, None, redirects=False)
    _count(url, 1, 0)
    if status in (301, 302, 303, 307, 308):
        if headers.get("location", "").endswith(url.split("://", 1)[-1].split("/", 1)[-1] + "/"):
            return {"type": "directory", "size": 0}
        status, headers, _ = _run(fs, url, "HEAD", {}, None)
        _count(url, 1, 0)
    if status == 404 or status == 410:
        return None
    _raise_for_status(url, status)
    length = headers.get("content-length")
    if length is None or "content-encoding" in headers:
        status, headers, _ = _run(fs, url, "GET", {"Range": "bytes=0-0"}, 1)
        _count(url, 1, 1)
        _raise_for_status(url, status)
        match = _CONTENT_RANGE.match(headers.get("content-range", ""))
        if status != 206 or match is None or match[3] == "*":
            raise WrongKindError(url, "the server gives no size for this object (no Content-Length or Content-Range)")
        length = match[3]
    return {"type": "file", "size": int(length), "etag": _strong(headers.get("etag"))}


def _http_get(fs: Any, url: str, start: int, end: int, whole: bool) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = _run(fs, url, "GET", {"Range": f"bytes={start}-{end - 1}"}, end - start,
                                 read_200=whole)
    if status not in (200, 206, 416):
        _raise_for_status(url, status)
    return status, headers, body


def _raise_for_status(url: str, status: int) -> None:
    if status in (401, 403):
        raise MetainspectError(url, f"access denied (HTTP {status}); check the credentials or headers given")
    if status in (404, 410):
        raise NotFoundError(url, f"no such object (HTTP {status})")
    if status >= 400:
        raise MetainspectError(url, f"the server answered HTTP {status}")


def _run(fs: Any, url: str, method: str, headers: dict[str, str], limit: int | None, *,
         read_200: bool = True, redirects: bool = True) -> tuple[int, dict[str, str], bytes]:
    from fsspec.asyn import sync

    try:
        return sync(fs.loop, _request, fs, url, method, headers, limit, read_200, redirects)  # type: ignore[no-any-return]
    except MetainspectError:
        raise
    except Exception as exc:  # noqa: BLE001  (aiohttp's and asyncio's errors, after the retries)
        raise _error(url, exc) from None


async def _request(fs: Any, url: str, method: str, headers: dict[str, str], limit: int | None,
                   read_200: bool, redirects: bool) -> tuple[int, dict[str, str], bytes]:
    """One request with bounded retries; the body of a 206 (or of a 200 when ``read_200``) is
    read up to ``limit`` bytes and one more (to notice a longer body)."""
    import aiohttp

    session = await fs.set_session()
    kwargs = dict(fs.kwargs)
    sent = {**kwargs.pop("headers", {}), **headers, "Accept-Encoding": "identity"}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
    for attempt in range(ATTEMPTS):
        last = attempt == ATTEMPTS - 1
        try:
            async with session.request(method, url, headers=sent, timeout=timeout, allow_redirects=redirects,
                                       **kwargs) as response:
                if response.status in _RETRY_STATUS and not last:
                    await asyncio.sleep(BACKOFF[attempt])
                    continue
                body = b""
                if method == "GET" and (response.status == 206 or (response.status == 200 and read_200)):
                    body = await _read_body(response, limit)
                return response.status, {k.lower(): v for k, v in response.headers.items()}, body
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
            if last:
                raise _GaveUp(exc) from None
            await asyncio.sleep(BACKOFF[attempt])
    raise AssertionError("unreachable")  # the last attempt returns or raises


async def _read_body(response: Any, limit: int | None) -> bytes:
    parts = []
    got = 0
    while limit is None or got <= limit:
        chunk = await response.content.read(1 << 20 if limit is None else min(1 << 20, limit + 1 - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class _GaveUp(Exception):
    """A request that failed :data:`ATTEMPTS` times."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(cause)
        self.cause = cause


def _error(url: str, exc: BaseException) -> MetainspectError:
    """One line for a backend's error."""
    tries = ""
    if isinstance(exc, _GaveUp):
        exc, tries = exc.cause, f" (gave up after {ATTEMPTS} attempts)"
    if isinstance(exc, FileNotFoundError):
        return NotFoundError(url, "no such object")
    if isinstance(exc, PermissionError):
        return MetainspectError(url, f"access denied: {_one_line(exc)}")
    name = type(exc).__name__
    if isinstance(exc, asyncio.TimeoutError) or "Timeout" in name:
        return MetainspectError(url, f"timed out{tries}")
    if "Connect" in name or isinstance(exc, ConnectionError):
        return MetainspectError(url, f"cannot connect: {_one_line(exc)}{tries}")
    if name == "FileExpired":
        return CorruptError(url, "changed while being read (its ETag or generation changed)")
    return MetainspectError(url, f"cannot read: {_one_line(exc) or name}{tries}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


# -- uploads -------------------------------------------------------------------------------------
@contextmanager
def staging(destination: str) -> Iterator[str]:
    """A temporary local directory holding what will be uploaded next to ``destination``."""
    directory = tempfile.mkdtemp(prefix=".metainspect-upload.")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def upload(filesystem: RemoteFileSystem, pairs: Sequence[tuple[str, str]], *,
           order: Callable[[str], int] = lambda url: 0) -> None:
    """Upload each ``(local file, URL)`` in ascending ``order(url)``, one object each (the
    backends commit a multipart upload at its end). On failure the objects already uploaded
    are deleted and the error names the URL."""
    ordered = sorted(pairs, key=lambda pair: (order(pair[1]), pair[1]))
    done: list[str] = []
    for local, url in ordered:
        try:
            filesystem.fs.put_file(local, url)
        except Exception as exc:  # noqa: BLE001
            filesystem.remove([*done, url])
            raise MetainspectError(url, f"upload failed, nothing left behind: {_error(url, exc).message}") from None
        finally:
            filesystem.forget(url)
        done.append(url)
        _count(url, 1, 0, os.path.getsize(local))
