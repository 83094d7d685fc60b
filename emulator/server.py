"""`EmulatorServer`: moto's threaded loopback server with the emulator's fault middleware, quiet."""

from __future__ import annotations

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


class _MotoServer(ThreadedMotoServer):
    def __init__(self, emulator: Emulator, host: str, port: int) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self._emulator = emulator

    def _server_entry(self) -> None:
        app = FaultMiddleware(DomainDispatcherApplication(create_backend_app), self._emulator)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=_QuietRequestHandler
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
