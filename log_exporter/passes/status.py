"""Where each log group of one lane stands (`log-exporter status`): the lane's state and its
groups, read through the lane's view, summed up by `core/status.py`."""

from __future__ import annotations

from log_exporter.core.config import GroupSelector
from log_exporter.core.status import GroupStatus, lane_status
from log_exporter.lane.view import LaneView


def status_of(view: LaneView, only: GroupSelector | None, stuck_after_s: int) -> list[GroupStatus]:
    """The status of `view`'s groups (those `only` matches, when given); a wait longer than
    `stuck_after_s` seconds is shown stuck."""
    state = view.load_state()
    groups = view.groups.matching(view.selector)
    state.observe_groups(dict(groups))  # a group created again is shown as a new one
    infos = [
        view.groups.describe(name, created)
        for name, created in groups
        if only is None or only.matches(name)
    ]
    out = lane_status(infos, state, view.rng, stuck_after_s * 1000)
    return [g for g in out if only is None or only.matches(g.group)]
