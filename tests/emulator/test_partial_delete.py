"""The emulator's DeleteObjects that deletes only some keys (200 with per-key `Errors`), and its
versioned archive bucket (a delete adds a delete marker; listings show current objects only)."""

from __future__ import annotations

import pytest

from emulator import Emulator, seed
from log_exporter.aws.archive import ArchiveBucket
from log_exporter.core.direct import MARKER
from log_exporter.errors import BucketError

from .conftest import Aws

A = "111111111111"


def _put(s3: object, keys: list[str]) -> None:
    for key in keys:
        s3.put_object(Bucket="archive", Key=key, Body=b"x")  # type: ignore[attr-defined]


def _listed(s3: object, prefix: str = "") -> list[str]:
    out = s3.list_objects_v2(Bucket="archive", Prefix=prefix)  # type: ignore[attr-defined]
    return [o["Key"] for o in out.get("Contents", [])]


def test_delete_objects_reports_some_keys_under_errors(emu: Emulator, aws: Aws) -> None:
    seed.create_bucket("archive", "us-east-1", A)
    s3 = aws.client("s3", A)
    keys = [f"t/task-1/s{i}/000000.gz" for i in range(4)] + ["other/a.gz"]
    _put(s3, keys)
    emu.partial_deletes(1, match="task-1/", code="AccessDenied")

    out = s3.delete_objects(
        Bucket="archive", Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
    )

    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    errors = {e["Key"]: e["Code"] for e in out["Errors"]}
    assert errors == {keys[0]: "AccessDenied", keys[2]: "AccessDenied"}  # every second match
    assert "Deleted" not in out  # Quiet: only the errors are listed
    assert sorted(_listed(s3)) == sorted(errors)
    assert emu.injected[("s3", "DeleteObjects", "AccessDenied")] == 2

    # the rule is spent: the next call deletes everything, and lists it when not quiet
    out = s3.delete_objects(Bucket="archive", Delete={"Objects": [{"Key": k} for k in errors]})
    assert "Errors" not in out
    assert sorted(d["Key"] for d in out["Deleted"]) == sorted(errors)
    assert _listed(s3) == []


def test_delete_objects_can_keep_failing_and_leaves_other_keys_alone(
    emu: Emulator, aws: Aws
) -> None:
    seed.create_bucket("archive", "us-east-1", A)
    s3 = aws.client("s3", A)
    _put(s3, ["t/task-2/s/000000.gz", "t/task-3/s/000000.gz"])
    emu.partial_deletes(None, match="task-2/", every=1)

    for _ in range(3):
        out = s3.delete_objects(
            Bucket="archive", Delete={"Objects": [{"Key": "t/task-2/s/000000.gz"}]}
        )
        assert [e["Code"] for e in out["Errors"]] == ["InternalError"]
    out = s3.delete_objects(Bucket="archive", Delete={"Objects": [{"Key": "t/task-3/s/000000.gz"}]})
    assert "Errors" not in out  # no key matches: moto's own answer
    assert _listed(s3) == ["t/task-2/s/000000.gz"]


def test_versioned_bucket_deletes_add_markers(emu: Emulator, aws: Aws) -> None:
    seed.create_bucket("archive", "us-east-1", A)
    emu.version_bucket("archive")
    s3 = aws.client("s3", A)
    keys = ["t/task-4/a/000000.gz", "t/task-4/b/000000.gz"]
    _put(s3, keys)
    emu.partial_deletes(1, match="task-4/")

    out = s3.delete_objects(Bucket="archive", Delete={"Objects": [{"Key": k} for k in keys]})

    assert [e["Key"] for e in out["Errors"]] == [keys[0]]
    assert _listed(s3, "t/") == [keys[0]]  # the other one is no longer current
    versions = s3.list_object_versions(Bucket="archive", Prefix="t/")
    assert [m["Key"] for m in versions.get("DeleteMarkers", [])] == [keys[1]]
    assert sorted(v["Key"] for v in versions["Versions"]) == sorted(keys)  # nothing is gone


def test_a_direct_folder_keeps_its_marker_until_its_last_object_is_deleted(
    emu: Emulator, aws: Aws
) -> None:
    """A delete of a direct read's folder that fails partway (a key S3 keeps listing under
    `Errors`) leaves the marker: a folder with objects and no marker would pass for a task's
    whole period when the state is rebuilt (`sync`)."""
    seed.create_bucket("archive", "us-east-1", A)
    s3 = aws.client("s3", A)
    folder = "p/2026/11/03/0f8fad5b-d9cb-469f-a165-70867728950e"
    objects = [f"{folder}/2026/11/03/[$LATEST]s{i}/000000.gz" for i in range(4)]
    _put(s3, [f"{folder}/{MARKER}", *objects])
    emu.partial_deletes(None, match="s2/000000", every=1)
    archive = ArchiveBucket(s3, "archive", sleep=lambda s: None)

    with pytest.raises(BucketError):
        archive.delete_task_output(*folder.rsplit("/", 1))

    assert sorted(_listed(s3)) == [f"{folder}/{MARKER}", objects[2]]

    emu.reset_faults()
    assert archive.delete_task_output(*folder.rsplit("/", 1)) == 2
    assert _listed(s3) == []
