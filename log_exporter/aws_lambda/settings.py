"""How the Lambda handlers behave (`LambdaSettings`): argument, then `LOG_EXPORTER_<FIELD>` from the
environment the template sets, then the default."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from log_exporter.errors import ConfigError
from log_exporter.settings import ENV_PREFIX, of_type, resolve

PACKAGED_CONFIG = "config.yml"
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds


@dataclass(frozen=True)
class LambdaSettings:
    """How the handlers behave. Each field can come from `LOG_EXPORTER_<FIELD>` in the
    environment (the template sets them); an explicit argument wins over the environment."""

    config: str = PACKAGED_CONFIG  # s3://bucket/key, or a file packaged with the function
    queue_url: str = ""
    bucket: str = ""  # the archive bucket the stack's IAM allows; the config must name it
    prefix: str | None = None  # likewise for destination.prefix (None: not checked)
    stop_before_seconds: float = 60.0  # stop this long before the invocation's own deadline
    requeue_delay_seconds: int = 10  # delay of a lane sent back because work remains
    busy_delay_seconds: int = 300  # delay of a lane sent back because another runner holds it
    max_busy_requeues: int = 6  # then the runner holding the lane is left to finish it

    def __post_init__(self) -> None:
        for name in ("requeue_delay_seconds", "busy_delay_seconds"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_DELAY_SECONDS:
                raise ConfigError(
                    f"{ENV_PREFIX}{name.upper()}: {value} is not between 0 and "
                    f"{MAX_DELAY_SECONDS} (the SQS limit for a message's delay)"
                )
        if self.stop_before_seconds < 0 or self.max_busy_requeues < 0:
            raise ConfigError(
                f"{ENV_PREFIX}STOP_BEFORE_SECONDS and {ENV_PREFIX}MAX_BUSY_REQUEUES cannot be negative"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str], **explicit: Any) -> LambdaSettings:
        """Explicit argument, else `LOG_EXPORTER_<FIELD>` from `env`, else the default."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            kind: type[Any] = (
                int
                if isinstance(f.default, int)
                else float
                if isinstance(f.default, float)
                else str
            )
            if f.name in explicit:  # an explicit None too: it is an argument
                values[f.name] = explicit[f.name]
                continue
            values[f.name] = resolve(
                None,
                ENV_PREFIX + f.name.upper(),
                of_type(kind),
                f.default,
                env=env,
                error=ConfigError,
                blank_is_unset=False,
                message="{name}: {raw!r} {problem}",
            )
        return cls(**values)
