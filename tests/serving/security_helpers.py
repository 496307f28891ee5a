"""Loopback HTTP listeners that record every request they get, for the SSRF tests.

One listener on 127.0.0.1 stands for a service inside the server's network (it must never be hit);
one on 127.0.0.2 stands for a public media host (tests tell the fetcher's address rule that this
one address is public; every other address keeps the real rule)."""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def png_bytes(size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


class Listener:
    """A threaded HTTP server on `host`; `hits` lists (path, Host header) of every request."""

    def __init__(self, host: str):
        self.hits: list[tuple[str, str | None]] = []
        self.redirects: dict[str, str] = {}  # path -> Location
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet test output
                pass

            def do_GET(self):
                listener.hits.append((self.path, self.headers.get("Host")))
                listener.answer(self)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.handle_error = lambda request, address: None  # clients that gave up (the timeout test)
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?")[0]
        if path in self.redirects:
            h.send_response(302)
            h.send_header("Location", self.redirects[path])
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif path == "/loop":
            h.send_response(302)
            h.send_header("Location", "/loop")
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif path == "/big":  # no Content-Length: the fetcher must count while reading
            h.send_response(200)
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(b"\x89PNG\r\n\x1a\n" + b"x" * 5000)
        elif path == "/claims-big":
            h.send_response(200)
            h.send_header("Content-Length", str(10**9))
            h.end_headers()
        elif path == "/slow":
            time.sleep(3)
            self._send(h, png_bytes(), "image/png")
        elif path == "/html":
            self._send(h, b"<html><body>login</body></html>", "image/png")  # lies about the type
        else:
            self._send(h, png_bytes(), "image/png")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, body: bytes, ctype: str) -> None:
        h.send_response(200)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
