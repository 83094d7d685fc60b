"""`python -m emulator`: serve the emulator on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import threading

from .core import Emulator
from .server import EmulatorServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566, help="0 picks a free port")
    parser.add_argument("--pending", type=float, default=1.0, help="seconds a task stays PENDING")
    parser.add_argument("--base", type=float, default=2.0, help="seconds a task runs at least")
    parser.add_argument(
        "--bytes-per-second", type=float, default=None, help="export speed (default: infinite)"
    )
    args = parser.parse_args(argv)
    emulator = Emulator(
        pending_seconds=args.pending,
        base_seconds=args.base,
        bytes_per_second=args.bytes_per_second,
    )
    with EmulatorServer(emulator, host=args.host, port=args.port) as server:
        print(f"emulator listening on {server.endpoint_url} (Ctrl-C to stop)", flush=True)
        print(f"  export AWS_ENDPOINT_URL={server.endpoint_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
