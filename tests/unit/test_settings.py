"""One order for every setting: an explicit argument, then the environment, then the default."""

from __future__ import annotations

import pytest

from log_exporter.aws.sessions import resolve_max_attempts
from log_exporter.engine import lease_seconds
from log_exporter.errors import ConfigError, UsageError
from log_exporter.settings import number_between, of_type, positive_int_or_unset, resolve


@pytest.mark.parametrize(
    ("argument", "env", "expected"),
    [
        (5.0, {"X": "7"}, 5.0),  # the argument wins over the environment
        (None, {"X": "7"}, 7.0),  # then the environment
        (None, {}, 1.5),  # then the default
        (None, {"X": "  "}, 1.5),  # a blank variable is not set
        (0.0, {"X": "7"}, 0.0),  # a falsy argument is still an argument
    ],
)
def test_argument_then_environment_then_default(
    argument: float | None, env: dict[str, str], expected: float
) -> None:
    assert resolve(argument, "X", float, 1.5, env=env) == expected


def test_a_bad_value_is_one_line_naming_the_variable() -> None:
    parse = number_between(0.3, 86_400, "a number of seconds")
    with pytest.raises(
        UsageError, match=r"^X='0\.1': expected a number of seconds from 0\.3 to 86400$"
    ):
        resolve(None, "X", parse, None, env={"X": "0.1"})
    with pytest.raises(ConfigError, match=r"^Y: 'soon' is not a int$"):
        resolve(
            None,
            "Y",
            of_type(int),
            3,
            env={"Y": "soon"},
            error=ConfigError,
            message="{name}: {raw!r} {problem}",
        )
    with pytest.raises(UsageError, match=r"^X='soon': expected"):  # spaces stripped
        resolve(None, "X", parse, None, env={"X": " soon "})


def test_a_blank_value_can_be_a_value() -> None:
    assert resolve(None, "P", str, None, env={"P": ""}, blank_is_unset=False) == ""


def test_an_explicit_none_is_an_argument_for_the_lambda_settings() -> None:
    from log_exporter.aws_lambda.settings import LambdaSettings

    env = {"LOG_EXPORTER_PREFIX": "logs"}
    assert LambdaSettings.from_env(env).prefix == "logs"
    assert LambdaSettings.from_env(env, prefix=None).prefix is None


def test_values_a_parser_calls_unset_fall_back_to_the_default() -> None:
    for raw in ("0", "-3", "ten"):
        assert resolve(None, "N", positive_int_or_unset, 10, env={"N": raw}) == 10
    assert resolve(None, "N", positive_int_or_unset, 10, env={"N": "4"}) == 4


def test_the_lease_and_the_sdk_attempts_use_the_same_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOG_EXPORTER_LEASE_SECONDS", "2")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "4")
    assert lease_seconds() == 2.0
    assert lease_seconds(9.0) == 9.0
    assert resolve_max_attempts() == 4
    assert resolve_max_attempts(6) == 6
    monkeypatch.delenv("LOG_EXPORTER_LEASE_SECONDS")
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    assert lease_seconds() is None
    assert resolve_max_attempts() == 10
