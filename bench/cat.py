"""The `cat` row of the benchmark: one large archived day (many streams, unsorted lines, two task
pieces) read back by the real `log-exporter cat` process: bytes per second read from the
emulator, and the process's peak RSS next to the day's size and its largest object.

The peak RSS is the exporter's own (see `measure.PeakRSS`).
"""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

from emulator import Emulator, seed
from emulator.scenario import ARCHIVE_ACCOUNT, REGION, day_ms, role_arn
from emulator.tasks import format_line

from .measure import ChildRun, run_exporter
from .scenarios import BUCKET, PREFIX, today_utc

ACCOUNT = "310000000000"
GROUP = "/bench/cat"
STREAMS = 200
EVENTS_PER_STREAM = 1500  # ~300,000 events, ~45 MB of lines, in 400 objects
TASKS = ("11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000")


@dataclass(frozen=True)
class CatRow:
    child: ChildRun
    hwm_mb: float  # the exporter's own peak RSS (VmHWM)
    objects: int
    gz_bytes: int  # what `cat` downloads
    line_bytes: int  # what it prints
    largest_object: int  # decompressed
    events: int
    ordered: bool  # the output is every event, in timestamp order

    @property
    def ok(self) -> bool:
        return self.child.code == 0 and self.ordered

    def render(self) -> list[str]:
        wall = self.child.wall
        mb = 1024 * 1024
        return [
            "| scenario | objects | events | archive MB (gz) | lines MB | largest object MB "
            "| wall s | gz MB/s | lines MB/s | peak RSS MB | CPU s | exit |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| cat, 1 day x {STREAMS} streams x 2 task pieces | {self.objects} | {self.events:,} "
            f"| {self.gz_bytes / mb:.1f} | {self.line_bytes / mb:.1f} "
            f"| {self.largest_object / mb:.2f} | {wall:.2f} | {self.gz_bytes / mb / wall:.1f} "
            f"| {self.line_bytes / mb / wall:.1f} | {self.hwm_mb:.0f} "
            f"| {self.child.cpu:.1f} | {self.child.code}{'' if self.ordered else ' (WRONG OUTPUT)'} |",
        ]


def seed_day(day: date) -> tuple[list[str], int, int, int]:
    """The day's archive written straight into the bucket as AWS lays it out: each stream's
    events in two task pieces (00:00-11:59 and 12:00-23:59), the lines of each object shuffled.
    Returns the expected output, the number of objects, their gz bytes and the largest object."""
    seed.create_bucket(BUCKET, REGION, ARCHIVE_ACCOUNT)
    backend = s3_backends[ARCHIVE_ACCOUNT][get_partition(REGION)]
    rng = random.Random(11)
    start = day_ms(day)
    folder = f"{PREFIX}/{ACCOUNT}/{GROUP.lstrip('/')}/{day:%Y/%m/%d}"
    expected: list[tuple[int, int, str]] = []
    objects = gz_bytes = largest = 0
    for s in range(STREAMS):
        stream = f"{day:%Y/%m/%d}/[$LATEST]{s:032x}"
        stamps = sorted(rng.sample(range(86_400_000), EVENTS_PER_STREAM))
        pieces: list[list[str]] = [[], []]
        for ts in stamps:
            message = f"req-{rng.getrandbits(64):016x} GET /api/items/{ts % 9973} 200 {ts % 997}ms"
            line = format_line(start + ts, message)
            pieces[0 if ts < 43_200_000 else 1].append(line)
            expected.append((start + ts, s, line))
        for task, lines in zip(TASKS, pieces, strict=True):
            rng.shuffle(lines)
            text = ("\n".join(lines) + "\n").encode()
            body = gzip.compress(text, compresslevel=6, mtime=0)
            key = f"{folder}/{task}/{stream}/000000.gz"
            backend.put_object(bucket_name=BUCKET, key_name=key, value=body)
            objects += 1
            gz_bytes += len(body)
            largest = max(largest, len(text))
    expected.sort()
    return [line for _, _, line in expected], objects, gz_bytes, largest


def run_cat(emu: Emulator, env: dict[str, str], workdir: Path) -> CatRow:
    emu.reset()
    day = today_utc() - timedelta(days=1)
    want, objects, gz_bytes, largest = seed_day(day)
    config = workdir / "cat.yml"
    config.write_text(
        f"destination:\n  bucket: {BUCKET}\n  prefix: {PREFIX}\naccounts:\n"
        f"  - name: bench\n    role: {role_arn(ACCOUNT)}\n    regions: [{REGION}]\n"
        f'    groups: ["{GROUP}"]\n'
    )
    args = ["cat", "--config", str(config), "--account", "bench", "--group", GROUP]
    child = run_exporter([*args, "--start", f"{day}", "--end", f"{day + timedelta(days=1)}"], env)
    got = child.stdout.splitlines()
    return CatRow(
        child=child,
        hwm_mb=child.max_rss_mb,
        objects=objects,
        gz_bytes=gz_bytes,
        line_bytes=len(child.stdout.encode()),
        largest_object=largest,
        events=len(want),
        ordered=got == want,
    )
