"""Where a setting's value comes from, decided in one place: an explicit argument (a command-line
option, a handler's keyword) wins, then the environment, then the config file or the default.

Every knob read from the environment goes through `resolve`, so the order never differs between
the CLI, the engine and the Lambda handlers, and a bad value is one line naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

from log_exporter.errors import LogExporterError, UsageError

T = TypeVar("T")
D = TypeVar("D")

ENV_PREFIX = "LOG_EXPORTER_"


class Unset(ValueError):
    """Raised by a parser for a value that counts as not set (the environment is then skipped)."""


def resolve(
    argument: T | None,
    env_name: str,
    parse: Callable[[str], T],
    default: D,
    *,
    env: Mapping[str, str] | None = None,
    error: type[LogExporterError] = UsageError,
    blank_is_unset: bool = True,
    message: str = "{name}={raw!r}: {problem}",
) -> T | D:
    """`argument` when given, else `parse(env[env_name])` when set and not blank, else `default`.

    `parse` raises ValueError saying what is wrong ("expected a number of seconds from 0.3 to
    86400"); that becomes `error(message)`, by default "ENV_NAME='raw': expected ..." (`raw`
    stripped of spaces unless a blank value is a value). A parser raising `Unset` makes the
    variable count as not set (for knobs whose bad values are ignored, as the SDKs do). With
    `blank_is_unset=False` an empty variable is a value (an empty prefix is a prefix).
    """
    if argument is not None:
        return argument
    raw = (os.environ if env is None else env).get(env_name)
    if raw is None or (blank_is_unset and not raw.strip()):
        return default
    if blank_is_unset:
        raw = raw.strip()
    try:
        return parse(raw)
    except Unset:
        return default
    except ValueError as exc:
        raise error(message.format(name=env_name, raw=raw, problem=exc)) from None


def number_between(low: float, high: float, what: str = "a number") -> Callable[[str], float]:
    """A parser of a float in [low, high]."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ValueError(f"expected {what} from {low:g} to {high:g}")
        return value

    return parse


def positive_int_or_unset(raw: str) -> int:
    """A positive integer; anything else counts as not set."""
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    raise Unset(raw)


def of_type(kind: type[T]) -> Callable[[str], T]:
    """A parser of `kind` (int, float or str), whose problem reads "is not a <kind>"."""

    def parse(raw: str) -> T:
        try:
            return kind(raw)  # type: ignore[call-arg]
        except ValueError:
            raise ValueError(f"is not a {kind.__name__}") from None

    return parse
