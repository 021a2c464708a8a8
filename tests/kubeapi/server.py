"""HTTPS plumbing: bearer-token check, request log, JSON or text responses."""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.kubeapi import apierrors
from tests.kubeapi.api import LogFollow, Response
from tests.kubeapi.apierrors import ApiError


class ApiServer:
    def __init__(self, cluster: Any, token: str, cert: Path, key: Path) -> None:
        self.cluster = cluster
        self.token = token
        self.stopping = False  # ends log streams (follow=true) when the server stops
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll
            name="kubeapi-http",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping = True
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every keep-alive request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request list is the log

            def _serve(self) -> None:
                url = urlsplit(self.path)
                query = dict(parse_qsl(url.query, keep_blank_values=True))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.cluster.record_request(self.command, url.path)
                try:
                    if self.headers.get("Authorization") != f"Bearer {server.token}":
                        raise apierrors.unauthorized()
                    response = server.cluster.handle(
                        self.command,
                        url.path,
                        query,
                        body,
                        content_type=self.headers.get("Content-Type") or "",
                    )
                except ApiError as e:
                    response = Response(e.code, e.status())
                self._send(response)

            def _follow(self, log: LogFollow) -> None:
                """Stream the log as the container writes it; the end of the body (the
                connection closing) means the container has ended."""
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                sent = 0
                with open(log.path, "rb") as f:
                    while log.limit is None or sent < log.limit:
                        alive = log.running()  # before reading: no byte written after is lost
                        want = 65536 if log.limit is None else min(65536, log.limit - sent)
                        data = f.read(want)
                        if data:
                            self.wfile.write(data)
                            self.wfile.flush()
                            sent += len(data)
                        elif not alive or server.stopping:
                            break
                        else:
                            time.sleep(0.05)

            def _send(self, response: Response) -> None:
                if isinstance(response.body, LogFollow):
                    self._follow(response.body)
                    return
                if isinstance(response.body, bytes):
                    payload, ctype = response.body, "text/plain"
                else:
                    payload, ctype = json.dumps(response.body).encode(), "application/json"
                self.send_response(response.code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for w in response.warnings:
                    self.send_header("Warning", f"299 - {json.dumps(w)}")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        return Handler
