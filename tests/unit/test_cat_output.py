"""How `cat` writes what it reads back: events as lines, gaps told once the lines before them are
out, the read closed in every case, and a reader that goes away (`| head`) not an error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Generator

import pytest

from log_exporter.cli.render.readback import event_json, write_events
from log_exporter.core.windows import Window
from log_exporter.passes.readback import Event, Gap


def event(ms: int, message: str, stream: str = "s1") -> Event:
    return Event(ms, stream, f"2026-11-03T00:00:00.{ms:03d}Z {message}".encode())


class Items:
    """A read's generator, recording whether it was closed."""

    def __init__(self, items: list[Event | Gap], fail: Exception | None = None) -> None:
        self.items = items
        self.fail = fail
        self.closed = False

    def __call__(self) -> Generator[Event | Gap, None, None]:
        try:
            yield from self.items
            if self.fail is not None:
                raise self.fail
        finally:
            self.closed = True


def test_events_and_gaps_in_order_each_gap_after_the_lines_before_it() -> None:
    out = io.BytesIO()
    told: list[tuple[str, bytes]] = []
    gap = Gap("2026-11-04", Window(0, 1), "has no archive (s3://b/x/)")
    source = Items([event(1, "a"), gap, event(2, "b")])
    gaps = write_events(
        source(),
        line=lambda e: e.raw,
        gap=lambda g: told.append((str(g), out.getvalue())),
        out=out,
    )
    assert gaps == 1
    assert out.getvalue() == b"2026-11-03T00:00:00.001Z a\n2026-11-03T00:00:00.002Z b\n"
    assert told == [(str(gap), b"2026-11-03T00:00:00.001Z a\n")]
    assert source.closed


def test_a_read_error_writes_the_lines_before_it_then_raises() -> None:
    out = io.BytesIO()
    source = Items([event(1, "a")], fail=OSError("cannot read"))
    with pytest.raises(OSError, match="cannot read"):
        write_events(source(), line=lambda e: e.raw, gap=lambda g: None, out=out)
    assert out.getvalue() == b"2026-11-03T00:00:00.001Z a\n"
    assert source.closed


def test_event_json() -> None:
    doc = json.loads(event_json(event(7, "héllo", "s2"), "prod", "111111111111", "/g"))
    assert doc == {
        "timestamp": "2026-11-03T00:00:00.007Z",
        "timestamp_ms": 7,
        "account": "prod",
        "account_id": "111111111111",
        "group": "/g",
        "stream": "s2",
        "message": "héllo",
    }


def test_a_reader_that_goes_away_ends_the_output_quietly() -> None:
    script = textwrap.dedent(
        """
        import sys
        from log_exporter.cli.render.readback import write_events
        from log_exporter.passes.readback import Event

        closed = []
        def items():
            try:
                for n in range(200_000):
                    yield Event(n, "s", b"2026-11-03T00:00:00.000Z " + b"x" * 100)
            finally:
                closed.append(True)

        sys.stdout.buffer.write(b"go\\n")
        sys.stdout.buffer.flush()
        gaps = write_events(items(), line=lambda e: e.raw, gap=lambda g: None)
        print("result", gaps, closed, file=sys.stderr)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"go\n"
    proc.stdout.close()  # `| head -1`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "result None [True]" in err
