"""`EmulatorServer`: moto's threaded loopback server with the emulator's fault middleware, quiet."""

from __future__ import annotations

import io
import socket
import time
import traceback
from types import TracebackType
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from .core import Emulator
from .faults import FaultMiddleware


class _QuietRequestHandler(MotoRequestHandler):
    """No access log; errors still go to werkzeug's logger."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, shifted by the emulator's clock-skew fault (Faults.clock_skew)."""
        faults = getattr(getattr(self.server.app, "sink", None), "faults", None)
        skew = getattr(faults, "clock_skew", 0.0)
        return super().date_time_string((time.time() if timestamp is None else timestamp) + skew)


class _KeepAliveRequestHandler(_QuietRequestHandler):
    """HTTP/1.1 keep-alive, as AWS endpoints have it. werkzeug's server closes the connection
    after every response, so every request cost a new TCP connection and a new server thread,
    and with hundreds of lanes that, not the exporter, was what a run waited for. A request of
    known length is read whole before the application runs, so nothing of it can be mistaken
    for the next request; anything else (a chunked body) is left to werkzeug, which closes."""

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm holds the
        # second one until the client's delayed ACK, 40 ms later, on a kept-alive connection
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        length_header = self.headers.get("Content-Length", "0") or "0"
        if (
            self.request_version != "HTTP/1.1"
            or "Transfer-Encoding" in self.headers
            or self.headers.get("Connection", "").lower() == "close"
            or not length_header.isdigit()
        ):
            super().run_wsgi()
            return
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        length = int(length_header)
        body = self.rfile.read(length) if length else b""
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        started: list[Any] = []
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except ConnectionError:  # the connection was dropped (a lost answer, see faults.py)
            self.close_connection = True
            return
        except Exception:
            self.server.log("error", f"Error on request:\n{traceback.format_exc()}")
            self.send_error(500)
            self.close_connection = True
            return
        status, headers = started
        code, _, reason = status.partition(" ")
        payload = b"".join(chunks)
        self.send_response(int(code), reason)
        sent = set()
        for name, value in headers:
            if name.lower() != "connection":
                self.send_header(name, value)
                sent.add(name.lower())
        if "content-length" not in sent and self.command != "HEAD":
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()


class _MotoServer(ThreadedMotoServer):
    def __init__(self, emulator: Emulator, host: str, port: int) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self._emulator = emulator

    def _server_entry(self) -> None:
        app = FaultMiddleware(DomainDispatcherApplication(create_backend_app), self._emulator)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=_KeepAliveRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class EmulatorServer:
    """Serves the emulator on loopback; `endpoint_url` is what AWS_ENDPOINT_URL should be."""

    def __init__(
        self, emulator: Emulator | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.emulator = emulator if emulator is not None else Emulator()
        self._moto = _MotoServer(self.emulator, host, port)
        self._running = False

    def start(self) -> EmulatorServer:
        if not self._running:
            self.emulator.install()
            self._moto.start()
            self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._moto.stop()
            self._running = False

    @property
    def host(self) -> str:
        return self._moto.get_host_and_port()[0]

    @property
    def port(self) -> int:
        return self._moto.get_host_and_port()[1]

    @property
    def endpoint_url(self) -> str:
        host, port = self._moto.get_host_and_port()
        return f"http://{host}:{port}"

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
