"""Read-only passes over the config's lanes (for `plan`, `status`, `stats`, `sync`): each lane is
built and inspected in parallel, and a lane that cannot be reached fails alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from log_exporter.engine import Engine, LaneSpec, RunOptions, plan_range, wrong_region
from log_exporter.errors import LogExporterError
from log_exporter.lane.view import LaneView

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class LaneOutcome(Generic[T]):
    """What inspecting one lane gave: a value, or the one-line reason it could not."""

    spec: LaneSpec
    account_id: str = ""
    bucket: str = ""  # the lane's archive bucket
    value: T | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def survey(
    engine: Engine,
    options: RunOptions,
    inspect: Callable[[LaneView], T],
    *,
    debug: bool = False,
) -> list[LaneOutcome[T]]:
    """Build a view of every lane `options` selects (see lane/view.py) and call `inspect` on it.

    The archive bucket is checked first (a missing bucket is one error for the whole command);
    a lane whose role cannot be assumed, or whose `inspect` raises one of our errors, gets an
    `error`. With `debug`, lanes are inspected one at a time and unexpected errors propagate.
    """
    rng = plan_range(engine.config, options, engine.clock())
    specs = engine.lane_specs(options)
    # every bucket is checked first, once each (a missing one is one error for the command)
    regions = {bucket: engine.bucket_region(bucket) for bucket in engine.buckets(specs)}

    def one(spec: LaneSpec) -> LaneOutcome[T]:
        out: LaneOutcome[T] = LaneOutcome(spec)
        if spec.error is not None:
            out.error = spec.error
            return out
        bucket = engine.bucket_for(spec)
        if bucket is None:
            out.error = engine.config.destination.no_bucket(spec.region)
            return out
        out.bucket = bucket
        settings = engine.settings(options, bucket)
        out.error = wrong_region(spec, regions[bucket], settings)
        if out.error is not None:
            return out
        try:
            view = engine.build_view(spec, rng, settings)
            out.account_id = view.account_id
            out.value = inspect(view)
        except LogExporterError as exc:
            out.error = str(exc)
        except Exception as exc:
            if debug:
                raise
            log.debug("lane %s crashed", spec.name, exc_info=True)
            out.error = f"unexpected {type(exc).__name__}: {exc}"
        return out

    if debug or len(specs) <= 1:
        return [one(s) for s in specs]
    with engine.executor_cls(min(engine.max_parallel, len(specs))) as pool:
        return list(pool.map(one, specs))
