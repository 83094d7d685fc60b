"""A CreateExportTask whose answer is lost after AWS created the task (a 5xx, a dropped
connection): the lane looks for the task (the account's active tasks by the window's name, then
the window's folder in the archive) before it creates again, and adopts what it finds: waits for
a running one, records a COMPLETED one, deletes a FAILED one's partial output and tries again.
Every event ends up archived once, with one COMPLETED task per window."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator import Emulator, seed
from emulator.scenario import REGION, config_yaml

from .conftest import (
    LEASE,
    Exporter,
    account_ids,
    assert_complete,
    read_state,
    seed_world,
    tasks_per_window,
)

BUCKET = "lost-answer-archive"


@pytest.mark.parametrize("how", ["500", "reset"])
def test_lost_answer_while_the_task_still_runs(emu: Emulator, exporter: Exporter, how: str) -> None:
    (account,) = account_ids(700_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=2)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix=f"running-{how}"))
    emu.task_timing(pending=0.05, base=1.5)  # still running when the lane looks for it
    emu.lose_answers(1, how=how)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert sum(emu.injected.values()) == 1
    assert_complete(world, f"running-{how}", [account], emu=emu)
    assert set(tasks_per_window(emu, [account]).values()) == {1}  # adopted, not created again
    # one call per window: neither botocore nor the lane sent the lost one again
    assert emu.calls[("logs", "CreateExportTask")] == 2 * 2


@pytest.mark.parametrize("how", ["500", "503", "reset"])
def test_lost_answer_of_a_task_that_already_completed(
    emu: Emulator, exporter: Exporter, how: str
) -> None:
    (account,) = account_ids(710_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=2)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix=f"completed-{how}"))
    emu.task_timing(pending=0.0, base=0.01)  # over before the lane's first backoff ends
    emu.lose_answers(1, how=how)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert sum(emu.injected.values()) == 1
    assert_complete(world, f"completed-{how}", [account], emu=emu)
    assert set(tasks_per_window(emu, [account]).values()) == {1}  # recorded, not exported again
    assert emu.calls[("logs", "CreateExportTask")] == 2 * 2


def test_lost_answer_of_a_task_that_failed(emu: Emulator, exporter: Exporter) -> None:
    (account,) = account_ids(720_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=2)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="failed"))
    emu.task_timing(pending=0.0, base=0.01)
    emu.fail_tasks(1, partial=True)  # the first task writes one object of two, then fails
    emu.lose_answers(1)

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    failed = [t for t in emu.tasks if t.status == "FAILED"]
    assert len(failed) == 1 and failed[0].objects  # it did leave partial output
    assert sum(emu.injected.values()) == 1
    # the partial output was deleted and the window exported again, once
    assert_complete(world, "failed", [account], emu=emu)
    windows = tasks_per_window(emu, [account])
    first = (account, failed[0].group, failed[0].from_ms, failed[0].to_ms)
    assert windows.pop(first) == 2 and set(windows.values()) == {1}
    assert emu.calls[("logs", "CreateExportTask")] == 2 * 2 + 1


# --- a task AWS lists late (review 12, §1 and §2) ---------------------------------------------


def test_the_emulator_can_list_the_task_of_a_lost_answer_late(emu: Emulator, aws: None) -> None:
    seed.create_bucket("late-listed", REGION)
    seed.create_group(seed.DEFAULT_ACCOUNT, REGION, "/late", 0)
    logs = boto3.client(
        "logs", region_name=REGION, config=Config(retries={"total_max_attempts": 1})
    )
    emu.lose_answers(1, unlisted_for=30.0)

    with pytest.raises(ClientError, match="InternalFailure"):
        logs.create_export_task(
            taskName="late", logGroupName="/late", fromTime=0, to=1, destination="late-listed"
        )

    (task,) = emu.tasks
    listed = [t["taskId"] for t in logs.describe_export_tasks()["exportTasks"]]
    by_status = [
        t["taskId"]
        for code in ("PENDING", "RUNNING", "COMPLETED")
        for t in logs.describe_export_tasks(statusCode=code)["exportTasks"]
    ]
    assert task.task_id not in listed + by_status  # not listed yet
    (by_id,) = logs.describe_export_tasks(taskId=task.task_id)["exportTasks"]  # asked: found
    assert by_id["taskName"] == "late"


def test_a_lost_answer_whose_task_is_listed_late_is_not_exported_twice(
    emu: Emulator, exporter: Exporter
) -> None:
    """The task of the lost answer holds the slot but is not listed; it ends (its output in the
    window's folder) while the lane waits for the slot: the lane looks before trying again, and
    records it instead of creating a second task."""
    (account,) = account_ids(730_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=2)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="listed-late"))
    emu.task_timing(pending=0.05, base=1.0)  # running when the lane first looks, then over
    emu.lose_answers(1, unlisted_for=60.0)  # not listed during the whole run

    result = exporter("run", "--config", str(cfg))

    assert result.code == 0, result.output
    assert sum(emu.injected.values()) == 1
    assert set(tasks_per_window(emu, [account]).values()) == {1}
    assert_complete(world, "listed-late", [account], emu=emu)


def test_giving_up_after_a_lost_answer_keeps_the_window_and_the_next_run_adopts_the_task(
    emu: Emulator, exporter: Exporter
) -> None:
    """A lane that gives up (here: the slot busy with no task in sight, past stuck_after) after
    a lost answer keeps the window's intent, by name: AWS holds its task, which the next run
    finds in the window's folder and records, instead of exporting the day again."""
    (account,) = account_ids(740_000_000_000, 1)
    world = seed_world(BUCKET, [account], days=2)
    cfg = exporter.config(config_yaml(BUCKET, [account], prefix="give-up"))
    emu.task_timing(pending=0.05, base=4.0)
    emu.lose_answers(1, unlisted_for=60.0)

    first = exporter(
        "run", "--config", str(cfg), "--stuck-after", "1s", LOG_EXPORTER_LEASE_SECONDS=LEASE
    )

    assert first.code == 1, first.output
    assert "the export slot is busy with no task in sight" in first.output
    (made,) = [t for t in emu.tasks if t.account_id == account]
    state = read_state(BUCKET, "give-up", account)
    assert [(i["from"], i["task_id"]) for i in state["intents"]] == [(made.from_ms, None)]
    assert state["lease"]["owner"] is None
    deadline = time.monotonic() + 30
    while emu.task(made.task_id).active and time.monotonic() < deadline:
        time.sleep(0.1)
    emu.task_timing(pending=0.02, base=0.05)

    again = exporter("run", "--config", str(cfg), LOG_EXPORTER_LEASE_SECONDS=LEASE)

    assert again.code == 0, again.output
    assert set(tasks_per_window(emu, [account]).values()) == {1}
    assert_complete(world, "give-up", [account], emu=emu)
