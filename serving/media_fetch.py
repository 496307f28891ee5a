"""Get the bytes behind a media URL: `data:` URLs, http(s) without becoming a proxy into the
server's network, and local files only inside `--allowed-local-media-path`.

http(s), hop by hop (at most `max_redirects` redirects, each hop checked the same way):
1. the host must be in `--allowed-media-domains` when that list is set (exact names, as vLLM);
2. the host is resolved once, and every address it resolves to must be public: loopback, private
   (RFC 1918), CGNAT, link-local, multicast, unspecified, reserved, IPv6 unique-local and IPv6
   forms that embed an IPv4 address (mapped, 6to4, NAT64, Teredo) are refused, whatever the
   spelling (`127.1`, `2130706433`, `[::1]` all resolve to loopback) — unless
   `--allow-private-media-urls`;
3. the connection goes to the address just checked (a DNS answer that changes between check and
   connect cannot redirect it), while the Host header, TLS SNI and certificate check use the name.
Environment proxies are not used: the check is about where the server itself connects.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpcore

from serving.errors import APIError
from serving.settings import MediaLimits

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
REDIRECTS = (301, 302, 303, 307, 308)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ULA = ipaddress.ip_network("fc00::/7")


async def fetch_bytes(url: str, limits: MediaLimits, param: str) -> bytes:
    """The raw bytes of `url`; any failure is an APIError(400) naming the part (`param`)."""
    if url[:5].lower() == "data:":
        return _decode_data_url(url, limits, param)
    scheme = urlsplit(url).scheme.lower()
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


# ---------------------------------------------------------------- address rules

def refusal_reason(ip: Address) -> str | None:
    """Why a media fetch may not connect to `ip`, or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6"
        if ip.teredo is not None:
            return "a Teredo IPv6"
        embedded = ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:  # 6to4 / NAT64 reach the IPv4 address inside: judge that one
            inner = refusal_reason(embedded)
            return f"an IPv6 address wrapping {inner}" if inner else None
        if ip in _ULA:
            return "an IPv6 unique-local"
    checks = (("a loopback", ip.is_loopback), ("an unspecified", ip.is_unspecified),
              ("a link-local", ip.is_link_local), ("a multicast", ip.is_multicast),
              ("a carrier-grade NAT", ip in _CGNAT), ("a private", ip.is_private),
              ("a reserved", ip.is_reserved), ("a non-public", not ip.is_global))
    return next((name for name, hit in checks if hit), None)


async def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to (IP literals in any spelling included), resolved once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


class _Hop:
    """One request target: scheme, host, port, path, and the one address it may connect to."""

    def __init__(self, url: str, param: str):
        parts = urlsplit(url)
        self.url, self.scheme = url, parts.scheme.lower()
        if self.scheme not in ("http", "https"):
            raise APIError(f"media URL {url!r} uses scheme {self.scheme!r}; only http(s) may be fetched", param=param)
        try:
            port = parts.port
            host = (parts.hostname or "").rstrip(".")
            self.ascii_host = host.encode("idna").decode() if host and not host.isascii() else host
        except (ValueError, UnicodeError) as exc:
            raise APIError(f"invalid media URL {url!r}: {exc}", param=param) from None
        if not host:
            raise APIError(f"media URL {url!r} has no host", param=param)
        if parts.username is not None or parts.password is not None:
            raise APIError("media URLs may not carry credentials (user:password@)", param=param)
        self.host = host
        self.port = port or (443 if self.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        literal = f"[{self.ascii_host}]" if ":" in self.ascii_host else self.ascii_host
        self.host_header = literal if port is None else f"{literal}:{port}"
        self.address: Address | None = None

    async def check(self, limits: MediaLimits, param: str) -> None:
        allowed = limits.allowed_media_domains
        if allowed is not None and self.host not in allowed:
            raise APIError(f"media host {self.host!r} is not in the server's --allowed-media-domains", param=param)
        try:
            addresses = await resolve(self.ascii_host, self.port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise APIError(f"could not resolve media host {self.host!r}: {exc}", param=param) from None
        if not addresses:
            raise APIError(f"media host {self.host!r} has no address", param=param)
        if not limits.allow_private_media_urls:
            for ip in addresses:
                if (reason := refusal_reason(ip)) is not None:
                    raise APIError(f"media host {self.host!r} resolves to {reason} address; this server fetches "
                                   "only public addresses (see --allow-private-media-urls)", param=param)
        self.address = addresses[0]


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the checked address whatever host the URL names (TLS still uses the name)."""

    def __init__(self, address: Address):
        self.address = str(address)
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None, socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        return await self.inner.connect_tcp(self.address, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


_SSL = ssl.create_default_context()


async def _fetch_http(url: str, limits: MediaLimits, param: str) -> bytes:
    try:
        async with asyncio.timeout(limits.fetch_timeout_s):  # one deadline for all hops and the body
            for _ in range(limits.max_redirects + 1):
                hop = _Hop(url, param)
                await hop.check(limits, param)
                status, location, data = await _get(hop, limits, param)
                if status not in REDIRECTS:
                    if status >= 400:
                        raise APIError(f"fetching {url} failed with HTTP {status}", param=param)
                    return data
                if not location:
                    raise APIError(f"{url} answered HTTP {status} without a Location", param=param)
                url = urljoin(url, location)
    except TimeoutError:
        raise APIError(f"fetching {url} took longer than {limits.fetch_timeout_s} s", param=param) from None
    raise APIError(f"more than {limits.max_redirects} redirects fetching media", param=param)


async def _get(hop: _Hop, limits: MediaLimits, param: str) -> tuple[int, str | None, bytes]:
    """One GET to the pinned address: (status, Location, body bounded by the byte limit)."""
    assert hop.address is not None
    url = httpcore.URL(scheme=hop.scheme.encode(), host=hop.ascii_host.encode(), port=hop.port,
                       target=hop.target.encode())
    headers = [(b"Host", hop.host_header.encode()), (b"User-Agent", b"thinkcap-media-fetch"), (b"Accept", b"*/*")]
    t = limits.fetch_timeout_s
    try:
        async with httpcore.AsyncConnectionPool(ssl_context=_SSL, network_backend=_PinnedBackend(hop.address),
                                                max_connections=1) as pool:
            async with pool.stream("GET", url, headers=headers, extensions={
                    "timeout": {"connect": t, "read": t, "write": t, "pool": t}}) as resp:
                head = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in resp.headers}
                if resp.status in REDIRECTS or resp.status >= 400:
                    return resp.status, head.get("location"), b""
                declared = head.get("content-length", "0")
                if declared.isdigit() and int(declared) > limits.fetch_max_bytes:
                    raise _too_big(limits, param)
                chunks, size = [], 0
                async for chunk in resp.aiter_stream():
                    size += len(chunk)
                    if size > limits.fetch_max_bytes:  # servers may lie about or omit the length
                        raise _too_big(limits, param)
                    chunks.append(chunk)
                return resp.status, None, b"".join(chunks)
    except httpcore.TimeoutException:
        raise APIError(f"fetching {hop.url} took longer than {t} s", param=param) from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, OSError) as exc:
        raise APIError(f"could not fetch {hop.url}: {type(exc).__name__}: {exc}", param=param) from None


# ---------------------------------------------------------------- content sniffing

_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
                (b"GIF89a", "image/gif"), (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"),
                (b"MM\x00*", "image/tiff"))
_VIDEO_MAGIC = ((b"\x1aE\xdf\xa3", "video/webm"), (b"\x00\x00\x01\xba", "video/mpeg"), (b"FLV", "video/x-flv"))


def sniff_mime(data: bytes) -> str | None:
    """The media type the bytes themselves show (magic numbers), whatever the URL or server claimed."""
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"AVI "):
        return "image/webp" if data[8:12] == b"WEBP" else "video/x-msvideo"
    if data[4:8] == b"ftyp":  # ISO base media: MP4/MOV, and AVIF/HEIC images
        brand = data[8:12]
        return "image/avif" if brand in (b"avif", b"avis") else "image/heic" if brand[:3] == b"hei" else "video/mp4"
    if len(data) > 188 and data[0] == 0x47 and data[188] == 0x47:
        return "video/mp2t"
    table = _IMAGE_MAGIC + _VIDEO_MAGIC
    return next((mime for magic, mime in table if data.startswith(magic)), None)


def check_sniffed(data: bytes, kind: str, param: str) -> str:
    """Refuse bytes that are not the kind of media the part says (an HTML error page, a script)."""
    mime = sniff_mime(data)
    if mime is None or not mime.startswith(kind):
        shown = mime or "no known image or video format"
        verb = "read the image" if kind == "image" else "open the video"
        raise APIError(f"could not {verb}: its bytes are {shown} (sniffed from the content), not {kind} data",
                       param=param)
    return mime


# ---------------------------------------------------------------- local files

def local_path(url: str, limits: MediaLimits, param: str) -> Path:
    """Resolve a local path/`file://` URL, refusing anything outside the allowed folder."""
    root = limits.allowed_local_media_path
    if root is None:
        raise APIError("local media paths are disabled; start the server with --allowed-local-media-path", param=param)
    raw = unquote(urlsplit(url).path) if url.startswith("file:") else url
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
