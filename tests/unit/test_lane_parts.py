"""The lane's parts over real botocore clients answered by botocore's Stubber (stubbed.py):
the slot after a lost answer, a busy slot, a FAILED task's output deleted before the retry, a
resumed intent whose task COMPLETED, and the lease keeper losing its conditional PUT."""

from __future__ import annotations

import pytest

from log_exporter.core.plan import ExportItem
from log_exporter.core.state import Failure, Intent, LaneState
from log_exporter.core.windows import Window
from log_exporter.errors import StateConflictError
from log_exporter.lane.lease import LeaseRaceLost
from log_exporter.lane.window import WindowState
from tests.unit.stubbed import ACCOUNT_ID, BUCKET, DAY, REGION, StubbedAws, state_body, task

GROUP = "/app/web"
ITEM = ExportItem(Window(0, DAY - 1), GROUP)


def test_a_lost_create_answer_is_followed_by_finding_and_adopting_the_task() -> None:
    aws = StubbedAws()
    lane = aws.lane()
    record, slot = lane.attempt.record, lane.attempt.slot
    name, dest = record.name_of(ITEM), record.dest(ITEM)
    # CreateExportTask made the task, but its answer was a 500: AWS may hold it
    aws.logs_stub.add_client_error(
        "create_export_task", "InternalServerError", "try later", http_status_code=500
    )
    aws.active_tasks(task("T1", name, "RUNNING", GROUP, dest))  # found by its name: adopted

    got = slot.create(ITEM, name)

    assert got == "T1"
    assert lane.result.tasks_created == 1
    assert lane.pacer.retries == 1  # looked for before the second try, which never came
    aws.assert_no_pending_responses()


def test_a_busy_slot_is_waited_for_then_the_task_created() -> None:
    aws = StubbedAws()
    lane = aws.lane()
    record, slot = lane.attempt.record, lane.attempt.slot
    name, dest = record.name_of(ITEM), record.dest(ITEM)
    aws.logs_stub.add_client_error(
        "create_export_task", "LimitExceededException", "one at a time", http_status_code=400
    )
    foreign = task("F1", "someone-elses", "RUNNING", "/other", "elsewhere")
    aws.active_tasks(foreign)
    aws.describe({**foreign, "status": {"code": "COMPLETED"}})  # it left the slot
    aws.logs_stub.add_response(
        "create_export_task",
        {"taskId": "T2"},
        {
            "taskName": name,
            "logGroupName": GROUP,
            "fromTime": 0,
            "to": DAY - 1,
            "destination": BUCKET,
            "destinationPrefix": dest,
        },
    )
    started = aws.clock()

    assert slot.create(ITEM, name) == "T2"
    assert aws.clock() > started  # it waited for the foreign task before creating
    aws.assert_no_pending_responses()


def test_a_failed_tasks_output_is_deleted_before_the_window_is_tried_again() -> None:
    aws = StubbedAws()
    lane = aws.lane()
    record, slot, backlog = lane.attempt.record, lane.attempt.slot, lane.attempt.backlog
    name, dest = record.name_of(ITEM), record.dest(ITEM)
    aws.state_put()  # the window's intent, with the lease
    aws.logs_stub.add_response("create_export_task", {"taskId": "T1"})
    aws.describe(task("T1", name, "FAILED", GROUP, dest))
    # its partial output, listed then deleted
    aws.s3_stub.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": f"{dest}/T1/a.gz"}, {"Key": f"{dest}/T1/b.gz"}], "KeyCount": 2},
        {"Bucket": BUCKET, "Prefix": f"{dest}/T1/"},
    )
    aws.s3_stub.add_response(
        "delete_objects",
        {},
        {
            "Bucket": BUCKET,
            "Delete": {
                "Objects": [{"Key": f"{dest}/T1/a.gz"}, {"Key": f"{dest}/T1/b.gz"}],
                "Quiet": True,
            },
        },
    )

    status = slot.export(ITEM)
    assert status.code == "FAILED"
    slot.settle(ITEM, status)

    aws.assert_no_pending_responses()  # deleted, and nothing created again yet
    assert list(backlog.queue) == [ITEM]  # queued to be tried again
    assert not lane.state.intents  # no claim that a task of it may exist
    assert record.window(ITEM).state is WindowState.PLANNED
    assert not lane.result.failed


def test_a_resumed_intent_whose_task_completed_is_recorded() -> None:
    aws = StubbedAws()
    lane = aws.lane()
    record, slot = lane.attempt.record, lane.attempt.slot
    name, dest = record.name_of(ITEM), record.dest(ITEM)
    intent = Intent(GROUP, ITEM.window, name, "T9")
    lane.state.add_intent(intent)
    aws.describe(task("T9", name, "COMPLETED", GROUP, dest))

    slot.resume(intent)

    aws.assert_no_pending_responses()
    assert lane.state.covered[GROUP].covers(ITEM.window)
    assert not lane.state.intents
    assert lane.result.archived == [ITEM]
    assert record.window(ITEM).state is WindowState.RECORDED
    assert lane.lease.unsaved


def test_a_resumed_intent_of_another_archives_task_is_not_recorded() -> None:
    """The same name in another bucket's folder is not ours: not found, planned again."""
    aws = StubbedAws()
    lane = aws.lane()
    record, slot = lane.attempt.record, lane.attempt.slot
    name = record.name_of(ITEM)
    intent = Intent(GROUP, ITEM.window, name, "T9")
    lane.state.add_intent(intent)
    aws.describe(task("T9", name, "COMPLETED", GROUP, "another/prefix"))
    aws.active_tasks()
    aws.s3_stub.add_response("list_objects_v2", {"CommonPrefixes": []})

    slot.resume(intent)

    aws.assert_no_pending_responses()
    assert GROUP not in lane.state.covered or not lane.state.covered[GROUP].covers(ITEM.window)
    assert not lane.result.archived and not lane.state.intents


def precondition_failed(aws: StubbedAws) -> None:
    aws.s3_stub.add_client_error(
        "put_object", "PreconditionFailed", "At least one of the pre-conditions failed", 412
    )
    # the object holds another runner's write, not ours (see StateStore._stored_etag)
    other = LaneState(ACCOUNT_ID, REGION, lease_owner="other-runner", lease_expires_ms=1)
    aws.get_object(state_body(other))


def test_the_lease_keepers_conditional_put_losing_the_race_stops_the_lane() -> None:
    aws = StubbedAws()
    lane = aws.lane()
    lane.lease.state = LaneState(ACCOUNT_ID, REGION, etag='"1"')  # held: written before
    precondition_failed(aws)

    with pytest.raises(StateConflictError):
        lane.lease.save()

    aws.assert_no_pending_responses()
    assert lane.lease.state.etag == '"1"'  # nothing taken from the other runner's write


def test_losing_the_race_for_the_first_write_starts_over() -> None:
    aws = StubbedAws()
    lane = aws.lane()
    lane.lease.state = LaneState(ACCOUNT_ID, REGION, etag='"1"')
    lane.lease.assume_held(lane.pacer.clock(), written=False)  # taken by this first write
    precondition_failed(aws)

    with pytest.raises(LeaseRaceLost):
        lane.lease.save()

    aws.assert_no_pending_responses()


def test_a_cleaned_up_window_whose_failed_task_is_still_an_intent_is_resumed() -> None:
    """What `sync` leaves after a kill between a task's FAILED end and its settle: the task's
    intent, and a failure whose output is to delete. The clean-up deletes the output; resuming
    the intent finds the FAILED task, deletes what is left (nothing) and plans the window again,
    a legal life for the window (no IllegalMove)."""
    aws = StubbedAws()
    lane = aws.lane()
    record, slot = lane.attempt.record, lane.attempt.slot
    name, dest = record.name_of(ITEM), record.dest(ITEM)
    intent = Intent(GROUP, ITEM.window, name, "T1")
    lane.state.add_intent(intent)
    lane.state.failures.append(
        Failure(GROUP, ITEM.window, "task T1 FAILED: partial output", 1, 0, cleanup="T1")
    )
    listed = {"Bucket": BUCKET, "Prefix": f"{dest}/T1/"}
    aws.s3_stub.add_response(
        "list_objects_v2", {"Contents": [{"Key": f"{dest}/T1/a.gz"}], "KeyCount": 1}, listed
    )
    aws.s3_stub.add_response("delete_objects", {}, None)
    aws.describe(task("T1", name, "FAILED", GROUP, dest))
    aws.s3_stub.add_response("list_objects_v2", {"KeyCount": 0}, listed)

    record.clean_up()
    slot.resume(intent)

    aws.assert_no_pending_responses()
    assert not lane.state.intents
    assert [f.cleanup for f in lane.state.failures] == [None]
    assert record.window(ITEM).state is WindowState.PLANNED  # exported again by this run
