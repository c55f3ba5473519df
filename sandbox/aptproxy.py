"""A small HTTP proxy that gives stand-ins the Debian mirror and nothing else.

Stand-ins live in network namespaces without a route out; apt inside reaches this proxy
through a forwarded socket. Only the configured mirror hosts are allowed, and packages
(immutable files under /pool/) are cached on disk so repeated bakes do not download again.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
UPSTREAM_TIMEOUT_SECONDS = 60


class _ProxyHandler(BaseHTTPRequestHandler):
    server: AptProxy

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        log.debug("apt proxy: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        url = urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in self.server.allowed_hosts:
            self.send_error(403, f"the sandbox only proxies {sorted(self.server.allowed_hosts)}")
            return
        cached = self.server.cache_path(self.path) if "/pool/" in url.path else None
        if cached is not None and cached.exists():
            self._send_file(cached)
            return
        self._relay(
            url.hostname, url.port or 80, url.path + (f"?{url.query}" if url.query else ""), cached
        )

    def _send_file(self, path: Path) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.send_header("Connection", "close")
        self.end_headers()
        with path.open("rb") as source:
            shutil.copyfileobj(source, self.wfile)

    def _relay(self, host: str, port: int, path: str, cache_to: Path | None) -> None:
        upstream = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT_SECONDS)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            upstream.request("GET", path, headers=headers)
            response = upstream.getresponse()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            sink = None
            if cache_to is not None and response.status == 200:
                cache_to.parent.mkdir(parents=True, exist_ok=True)
                sink = cache_to.with_suffix(".partial")
            with open(sink, "wb") if sink else _NullWriter() as copy:
                while chunk := response.read(64 * 1024):
                    self.wfile.write(chunk)
                    copy.write(chunk)
            if sink is not None and cache_to is not None:
                sink.rename(cache_to)
        except OSError as exc:
            log.warning("apt proxy: upstream %s%s failed: %s", host, path, exc)
        finally:
            upstream.close()


class _NullWriter:
    def __enter__(self) -> _NullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: bytes) -> None:
        return None


class AptProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, port: int, allowed_hosts: set[str], cache_dir: Path) -> None:
        super().__init__(("127.0.0.1", port), _ProxyHandler)
        self.allowed_hosts = allowed_hosts
        self.cache_dir = cache_dir

    def cache_path(self, url: str) -> Path:
        digest = hashlib.sha256(url.encode()).hexdigest()
        return self.cache_dir / digest[:2] / digest

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="apt-proxy", daemon=True)
        thread.start()
        return thread
