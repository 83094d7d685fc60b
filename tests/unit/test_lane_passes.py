"""The per-lane passes of `status` and `retention`, over a fake lane view: which groups they
read, and how a refused PutRetentionPolicy becomes the group's error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from log_exporter.core.config import GroupSelector
from log_exporter.core.plan import GroupInfo, PlanRange
from log_exporter.core.retention import Outcome
from log_exporter.core.state import LaneState
from log_exporter.core.windows import MS_PER_DAY, Window, to_ms
from log_exporter.errors import AccessDeniedError
from log_exporter.passes.retention import retention_of
from log_exporter.passes.status import status_of

D = to_ms(date(2026, 11, 1))
NOW = D + 40 * MS_PER_DAY


@dataclass
class FakeGroups:
    created: dict[str, int]
    refuse: set[str] = field(default_factory=set)
    retention_set: list[tuple[str, int]] = field(default_factory=list)

    def matching(self, selector: Any) -> list[tuple[str, int]]:
        return sorted(self.created.items())

    def describe(self, name: str, created: int) -> GroupInfo:
        return GroupInfo(name, created, NOW - MS_PER_DAY, retention_days=None)

    def set_retention(self, group: str, days: int) -> None:
        if group in self.refuse:
            raise AccessDeniedError(f"{group}: AccessDeniedException: not allowed")
        self.retention_set.append((group, days))


@dataclass
class FakeView:
    groups: FakeGroups
    state: LaneState
    selector: Any = None
    rng: PlanRange = field(
        default_factory=lambda: PlanRange(
            start_ms=None, end_ms=D + 39 * MS_PER_DAY, now_ms=NOW, settle_ms=0
        )
    )

    def load_state(self) -> LaneState:
        return self.state


def archived(*groups: str) -> LaneState:
    state = LaneState("111111111111", "us-east-1", period="day")
    for g in groups:
        state.mark_done(g, Window(D, D + 39 * MS_PER_DAY - 1))
    return state


def test_status_reads_only_the_groups_asked_for() -> None:
    view = FakeView(FakeGroups({"/a": D, "/b": D}), archived("/a", "/b"))
    out = status_of(view, GroupSelector(("/a",)), 6 * 3600)  # type: ignore[arg-type]
    assert [g.group for g in out] == ["/a"]
    assert [g.group for g in status_of(view, None, 6 * 3600)] == ["/a", "/b"]  # type: ignore[arg-type]


def test_retention_sets_archived_groups_and_reports_a_refusal_per_group() -> None:
    groups = FakeGroups({"/a": D, "/b": D, "/c": D}, refuse={"/b"})
    view = FakeView(groups, archived("/a", "/b"))  # /c has days the archive lacks
    decisions = {d.group: d for d in retention_of(view, None, 7, dry_run=False)}  # type: ignore[arg-type]
    assert groups.retention_set == [("/a", 7)]
    assert (decisions["/a"].outcome, decisions["/a"].error) == (Outcome.SET, "")
    assert decisions["/b"].outcome == Outcome.FAILED
    assert "AccessDeniedException: not allowed" in decisions["/b"].error
    assert decisions["/c"].outcome == Outcome.REFUSED and decisions["/c"].missing


def test_a_dry_run_sets_nothing() -> None:
    groups = FakeGroups({"/a": D})
    retention_of(FakeView(groups, archived("/a")), None, 7, dry_run=True)  # type: ignore[arg-type]
    assert groups.retention_set == []
