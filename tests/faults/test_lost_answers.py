"""A CreateExportTask whose answer is lost after AWS created the task (a 5xx, a dropped
connection): the lane looks for the task (the account's active tasks by the window's name, then
the window's folder in the archive) before it creates again, and adopts what it finds: waits for
a running one, records a COMPLETED one, deletes a FAILED one's partial output and tries again.
Every event ends up archived once, with one COMPLETED task per window."""

from __future__ import annotations

import pytest

from emulator import Emulator
from emulator.scenario import config_yaml

from .conftest import Exporter, account_ids, assert_complete, seed_world, tasks_per_window

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
