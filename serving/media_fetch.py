"""Get the bytes behind a media URL: `data:` URLs, http(s) with size and time limits, and local
files only inside `--allowed-local-media-path` (a server must not read arbitrary files for a client).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from serving.errors import APIError
from serving.settings import MediaLimits


async def fetch_bytes(url: str, limits: MediaLimits, param: str) -> bytes:
    """The raw bytes of `url`; any failure is an APIError(400) naming the part (`param`)."""
    if url.startswith("data:"):
        return _decode_data_url(url, limits, param)
    scheme = urlparse(url).scheme.lower()
    if scheme in ("http", "https"):
        return await _fetch_http(url, limits, param)
    if scheme in ("", "file"):
        return await asyncio.to_thread(_read_local, url, limits, param)
    raise APIError(f"unsupported media URL scheme {scheme!r}: use https://, data: or a local path", param=param)


def _too_big(limits: MediaLimits, param: str) -> APIError:
    return APIError(f"media is larger than the server's limit of {limits.fetch_max_bytes} bytes", param=param)


def _decode_data_url(url: str, limits: MediaLimits, param: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise APIError("malformed data URL: expected data:<mime>;base64,<payload>", param=param)
    # base64 grows data by 4/3: refuse before decoding anything huge.
    if len(payload) * 3 // 4 > limits.fetch_max_bytes:
        raise _too_big(limits, param)
    if not header.endswith(";base64"):
        return unquote(payload).encode()
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise APIError(f"data URL is not valid base64: {exc}", param=param) from None


async def _fetch_http(url: str, limits: MediaLimits, param: str) -> bytes:
    try:
        async with httpx.AsyncClient(timeout=limits.fetch_timeout_s, follow_redirects=True) as client:
            async with client.stream("GET", url) as resp:
                if resp.status_code >= 400:
                    raise APIError(f"fetching {url} failed with HTTP {resp.status_code}", param=param)
                declared = int(resp.headers.get("content-length") or 0)
                if declared > limits.fetch_max_bytes:
                    raise _too_big(limits, param)
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > limits.fetch_max_bytes:  # servers may lie about or omit the length
                        raise _too_big(limits, param)
                    chunks.append(chunk)
                return b"".join(chunks)
    except httpx.TimeoutException:
        raise APIError(f"fetching {url} took longer than {limits.fetch_timeout_s} s", param=param) from None
    except httpx.HTTPError as exc:
        raise APIError(f"could not fetch {url}: {exc}", param=param) from None


def local_path(url: str, limits: MediaLimits, param: str) -> Path:
    """Resolve a local path/`file://` URL, refusing anything outside the allowed folder."""
    root = limits.allowed_local_media_path
    if root is None:
        raise APIError("local media paths are disabled; start the server with --allowed-local-media-path", param=param)
    raw = unquote(urlparse(url).path) if url.startswith("file:") else url
    try:  # NUL bytes, unknown ~user, over-long names: the OS refuses them, the client sent them
        path = Path(raw).expanduser()
        # resolve() follows symlinks, so a link inside the folder cannot point outside it.
        path = (path if path.is_absolute() else root / path).resolve()
        if not path.is_relative_to(root):
            raise APIError(f"{raw} is outside the allowed local media path {root}", param=param)
        if not path.is_file():
            raise APIError(f"local media file {raw} does not exist", param=param)
    except (OSError, RuntimeError, ValueError) as exc:
        raise APIError(f"invalid local media path {raw!r}: {exc}", param=param) from None
    return path


def _read_local(url: str, limits: MediaLimits, param: str) -> bytes:
    path = local_path(url, limits, param)
    try:
        if path.stat().st_size > limits.fetch_max_bytes:
            raise _too_big(limits, param)
        return path.read_bytes()
    except OSError as exc:  # e.g. permission denied
        raise APIError(f"could not read local media file {path.name}: {exc.strerror or exc}", param=param) from None
