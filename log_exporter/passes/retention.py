"""Shortening the CloudWatch retention of one lane's groups (`log-exporter retention`): each
group's archive read through the lane's view, the decision made by `core/retention.py`, the new
retention set with the lane's own (member) role."""

from __future__ import annotations

from log_exporter.aws.errors import REFUSALS
from log_exporter.core.config import GroupSelector
from log_exporter.core.retention import RetentionDecision, apply_retention
from log_exporter.lane.view import LaneView


def retention_of(
    view: LaneView, only: GroupSelector | None, days: int, *, dry_run: bool
) -> list[RetentionDecision]:
    """Set `days` of retention on `view`'s groups (those `only` matches) whose archive holds
    every day it would delete; with `dry_run`, decide only."""
    state = view.load_state()
    infos = [
        view.groups.describe(name, created)
        for name, created in view.groups.matching(view.selector)
        if only is None or only.matches(name)
    ]

    def put(group: str, n: int) -> str | None:
        try:  # with the account's (member) role, like every logs call of the lane
            view.groups.set_retention(group, n)
        except REFUSALS as exc:
            return str(exc)
        return None

    return apply_retention(infos, state, days, view.rng, put, dry_run=dry_run)
