"""Coming from c7n-logexporter: its config files, its marker objects and its task windows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from log_exporter.aws.archive import ArchiveBucket
from log_exporter.aws.tasks import TaskStatus
from log_exporter.core.config import parse_config_text
from log_exporter.core.policy import member_role_policy
from log_exporter.core.retention import AWS_RETENTION_DAYS
from log_exporter.core.state import LaneState
from log_exporter.core.windows import MS_PER_DAY, Window, day_window
from log_exporter.errors import ConfigError
from log_exporter.passes.sync import C7N_LAST_MS, Listing, TaskFolder, list_task_folders, rebuild

from .test_sync import FakeS3

# c7n-logexporter's README, as documented ("Config format")
C7N_README = """
destination:
  bucket: custodian-log-archive
  prefix: logs2

accounts:
  - name: custodian-demo
    role: "arn:aws:iam::111111111111:role/CloudCustodianRole"
    groups:
      - "/aws/lambda/*"
      - "vpc-flow-logs"
"""

# c7n-logexporter's own config.yml: a chain-less role, and `self` for the ambient credentials
C7N_SAMPLE = """
destination:
  bucket: c7n-log-archive
  prefix: logs

accounts:
  - name: custodian-demo
    role: "arn:aws:iam::114002464496:role/CloudCustodianRole"
    groups:
      - "/aws/lambda/*"

  - name: custodian-dev
    role: "self"
    groups:
      - "/aws/lambda/*"
      - "API-Gateway-Execution-Logs*"
"""


def test_c7n_readme_config_runs_as_is() -> None:
    cfg = parse_config_text(C7N_README, "config.yml")

    assert (cfg.destination.bucket, cfg.destination.prefix) == ("custodian-log-archive", "logs2")
    account = cfg.accounts[0]
    assert account.role_chain == ["arn:aws:iam::111111111111:role/CloudCustodianRole"]
    # c7n matches with fnmatch: `*` also matches `/`, as here
    assert account.selector.matches("/aws/lambda/api")
    assert account.selector.matches("/aws/lambda/api/v2")
    assert account.selector.matches("vpc-flow-logs")
    assert not account.selector.matches("vpc-flow-logs-2")


def test_c7n_role_self_means_the_ambient_credentials() -> None:
    cfg = parse_config_text(C7N_SAMPLE, "config.yml")

    assert cfg.accounts[1].role is None
    assert cfg.accounts[1].role_chain == []
    assert cfg.accounts[1].selector.matches("API-Gateway-Execution-Logs_abc/prod")


def test_c7n_role_chain_runs_as_is() -> None:
    text = C7N_README.replace(
        '    role: "arn:aws:iam::111111111111:role/CloudCustodianRole"\n',
        "    role:\n"
        '      - "arn:aws:iam::999999999999:role/Hub"\n'
        '      - "arn:aws:iam::111111111111:role/CloudCustodianRole"\n',
    )
    assert parse_config_text(text, "c.yml").accounts[0].role_chain[0].endswith(":role/Hub")


def test_c7n_subscription_is_one_clear_error() -> None:
    text = C7N_README + (
        "subscription:\n"
        "  destination-arn: arn:aws:logs:us-east-1:111111111111:destination:archive\n"
        "  name: FlowLogStream\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config_text(text, "config.yml")
    message = str(err.value)
    assert message.startswith("config.yml: subscription: c7n-logexporter's log subscriptions")
    assert "\n" not in message


def test_c7n_prefix_with_a_trailing_slash_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config_text(C7N_README.replace("prefix: logs2", "prefix: logs2/"), "config.yml")
    assert str(err.value) == (
        "config.yml: destination.prefix: prefix 'logs2/' must not start or end with '/'"
    )


ROOT = "logs2/111111111111/"
T1 = "0f8fad5b-d9cb-469f-a165-70867728950e"
T2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
T3 = "3f333df6-90a4-4fda-8dd3-9485d27cee36"
D1 = day_window(date(2026, 11, 1))


def test_c7n_marker_objects_are_recognised_not_strays() -> None:
    keys = [
        f"{ROOT}aws/lambda/api",  # c7n's marker: the group folder's own key
        f"{ROOT}aws/lambda/api/2026/11/01/{T1}/2026/11/01/[$LATEST]abc/000000.gz",
        f"{ROOT}aws/lambda/api/2026/11/01/aws-logs-write-test",
        f"{ROOT}vpc-flow-logs",
        f"{ROOT}vpc-flow-logs/2026/11/01/{T2}/eni-1/000000.gz",
        f"{ROOT}other-group",  # a marker of a group the config does not select: a stray
    ]
    out = list_task_folders(
        ArchiveBucket(FakeS3(keys), "b"),  # type: ignore[arg-type]
        ROOT,
        ["/aws/lambda/api", "vpc-flow-logs"],
        "day",
    )

    assert out.markers == {
        "/aws/lambda/api": f"{ROOT}aws/lambda/api",
        "vpc-flow-logs": f"{ROOT}vpc-flow-logs",
    }
    assert [(f.group, f.task_id) for f in out.folders] == [
        ("/aws/lambda/api", T1),
        ("vpc-flow-logs", T2),
    ]
    assert (out.strays, out.stray) == (1, [f"{ROOT}other-group"])


def c7n_task(task_id: str, window: Window) -> TaskStatus:
    return TaskStatus.from_api(
        {
            "taskId": task_id,
            "taskName": "c7n-log-exporter-2026-11-01",
            "logGroupName": "vpc",
            "from": window.start,
            "to": window.end,
            "status": {"code": "COMPLETED"},
        }
    )


def folder(day: int, task_id: str) -> TaskFolder:
    w = day_window(date(2026, 11, day))
    return TaskFolder("vpc", w, task_id, f"{ROOT}vpc/2026/11/{day:02d}")


def test_a_c7n_folder_aws_describes_is_recorded_with_its_exact_window() -> None:
    c7n = Window(D1.start, D1.start + C7N_LAST_MS)  # [00:00, 23:59:00.000]: the minute it lost
    listing = Listing(folders=[folder(1, T1)])

    out = rebuild(
        LaneState("111111111111", "us-east-1"), listing, {T1: c7n_task(T1, c7n)}, "day", 0
    )

    assert out.state.covered["vpc"].spans == [(c7n.start, c7n.end)]
    assert out.state.covered["vpc"].missing(D1) == [Window(c7n.end + 1, D1.end)]  # next run's


def test_c7n_folders_aws_forgot_are_c7n_windows_up_to_last_export_only() -> None:
    # days 1 and 2 by c7n (LastExport day 2), day 3 by log-exporter: AWS lists none of them
    listing = Listing(folders=[folder(1, T1), folder(2, T2), folder(3, T3)])
    old = LaneState("111111111111", "us-east-1")

    out = rebuild(old, listing, {}, "day", 0, {"vpc": date(2026, 11, 2)})

    d2, d3 = D1.start + MS_PER_DAY, D1.start + 2 * MS_PER_DAY
    assert out.state.covered["vpc"].spans == [
        (D1.start, D1.start + C7N_LAST_MS),
        (d2, d2 + C7N_LAST_MS),
        (d3, d3 + MS_PER_DAY - 1),  # a whole day, as before
    ]
    assert (out.c7n_window, out.whole_period) == (2, 1)
    # without a marker, every forgotten folder is its whole day
    plain = rebuild(old, listing, {}, "day", 0)
    assert plain.state.covered["vpc"].spans == [(D1.start, d3 + MS_PER_DAY - 1)]


def test_the_lost_minute_exported_later_is_not_a_double() -> None:
    c7n = Window(D1.start, D1.start + C7N_LAST_MS)
    rest = Window(c7n.end + 1, D1.end)
    tasks = {T1: c7n_task(T1, c7n), T2: c7n_task(T2, rest), T3: c7n_task(T3, D1)}
    pieces = Listing(folders=[folder(1, T1), folder(1, T2)])
    state = LaneState("111111111111", "us-east-1")

    assert rebuild(state, pieces, tasks, "day", 0).doubled == []
    twice = Listing(folders=[folder(1, T1), folder(1, T3)])
    assert rebuild(state, twice, tasks, "day", 0).doubled == [("vpc", D1)]


def test_policy_with_retention_adds_only_put_retention_policy() -> None:
    account = parse_config_text(C7N_README, "c.yml").accounts[0]
    plain = member_role_policy(account, "111111111111", ["us-east-1"], "b", "logs2")
    more = member_role_policy(
        account, "111111111111", ["us-east-1"], "b", "logs2", with_retention=True
    )

    def actions(doc: dict[str, Any]) -> set[str]:
        out: set[str] = set()
        for st in doc["Statement"]:
            out |= {st["Action"]} if isinstance(st["Action"], str) else set(st["Action"])
        return out

    assert "logs:PutRetentionPolicy" not in actions(plain)
    assert actions(more) - actions(plain) == {"logs:PutRetentionPolicy"}
    # on the selected groups only, like the export itself
    assert "logs:PutRetentionPolicy" in more["Statement"][0]["Action"]
    assert more["Statement"][0]["Resource"] == plain["Statement"][0]["Resource"]


def test_aws_retention_values() -> None:
    assert AWS_RETENTION_DAYS[0] == 1 and AWS_RETENTION_DAYS[-1] == 3653
    assert len(AWS_RETENTION_DAYS) == 22


def test_a_later_sync_takes_only_the_first_folder_of_a_c7n_day_as_c7n_s() -> None:
    # day 1: c7n's folder, then log-exporter's lost minute; AWS lists neither any more, and the
    # c7n marker (left alone) still says LastExport = day 1 (review14 §4)
    c7n, mine = folder(1, T1), folder(1, T2)
    for order in ([c7n, mine], [mine, c7n]):
        listing = Listing(folders=order, written={c7n: D1.end + 1, mine: D1.end + 2})

        old = LaneState("111111111111", "us-east-1")
        out = rebuild(old, listing, {}, "day", 0, {"vpc": date(2026, 11, 1)})

        assert out.state.covered["vpc"].missing(D1) == []  # the next run exports nothing again
        assert out.doubled == []
        assert (out.c7n_window, out.whole_period) == (1, 1)


def test_sync_records_the_times_a_c7n_folder_holds_outside_its_utc_day() -> None:
    # c7n in UTC-5: its folder of day 1 holds [1st 05:00, 2nd 04:59:00.000] UTC (review14 §3)
    shifted = Window(D1.start + 5 * 3_600_000, D1.start + 5 * 3_600_000 + C7N_LAST_MS)
    listing = Listing(folders=[folder(1, T1)])
    old = LaneState("111111111111", "us-east-1")

    out = rebuild(old, listing, {T1: c7n_task(T1, shifted)}, "day", 0)

    assert out.state.displaced["vpc"].spans == [(D1.end + 1, shifted.end)]
    # kept by a later sync that no longer sees the task, and across a save
    again = rebuild(LaneState.from_json(out.state.to_json()), listing, {}, "day", 0)
    assert again.state.displaced["vpc"].spans == [(D1.end + 1, shifted.end)]
    assert "displaced" not in rebuild(old, listing, {}, "day", 0).state.to_json()
