"""A window's life in a lane: its states, the moves allowed between them, and the done states.

One window (a group's day or hour) goes through these states in a run:

    PLANNED       in the plan, nothing recorded for it yet (or again, after a retry)
    INTENT        its intent recorded in the lane's state: a task (or folder) may exist
    CREATED       its export task created (or found, adopted): the slot waits for it
    ENDED         its task ended (COMPLETED, FAILED, CANCELLED): not recorded yet
    WRITTEN       a direct read: its folder written whole (marker and objects)
  done (never left):
    RECORDED      archived, recorded in the state
    EMPTY         no event in it: recorded archived without a task
    FAILED        recorded failed (tries used up, group deleted, output left to delete)
    LEFT          left for a later run (the lane stopped: deadline, stop signal)

An export goes PLANNED -> INTENT -> CREATED -> ENDED -> RECORDED; a direct read PLANNED ->
INTENT -> WRITTEN -> RECORDED. Back to PLANNED: an intent dropped before its task (the next
window's, when its turn does not come), a failed task's output deleted before another try, a
read's folder cut short and deleted. A window an earlier runner left in flight starts at INTENT.
Any other move is a bug in the lane and raises `IllegalMove`.
"""

from __future__ import annotations

import enum

from log_exporter.core.plan import ExportItem


class WindowState(enum.Enum):
    PLANNED = "planned"
    INTENT = "intent recorded"
    CREATED = "task created"
    ENDED = "task ended"
    WRITTEN = "written"
    RECORDED = "recorded"
    EMPTY = "empty"
    FAILED = "failed"
    LEFT = "left for a later run"


S = WindowState
DONE = frozenset({S.RECORDED, S.EMPTY, S.FAILED, S.LEFT})
# the legal moves: from each state, the states it may go to (a done state goes nowhere)
MOVES: dict[WindowState, frozenset[WindowState]] = {
    S.PLANNED: frozenset({S.INTENT, S.EMPTY, S.FAILED, S.LEFT}),
    S.INTENT: frozenset({S.CREATED, S.WRITTEN, S.PLANNED, S.FAILED, S.LEFT}),
    S.CREATED: frozenset({S.ENDED, S.FAILED, S.LEFT}),
    S.ENDED: frozenset({S.RECORDED, S.PLANNED, S.FAILED, S.LEFT}),
    S.WRITTEN: frozenset({S.RECORDED, S.FAILED, S.LEFT}),
    **{done: frozenset() for done in DONE},
}


class IllegalMove(RuntimeError):
    """A programming error: the lane moved a window in a way its life does not allow."""


class Window:
    """One window of the run and where it is in its life (see the module's docstring)."""

    __slots__ = ("item", "state")

    def __init__(self, item: ExportItem, state: WindowState = WindowState.PLANNED) -> None:
        self.item = item
        self.state = state

    @property
    def done(self) -> bool:
        return self.state in DONE

    def move(self, to: WindowState) -> None:
        if to not in MOVES[self.state]:
            raise IllegalMove(
                f"{self.item.group} {self.item.window}: {self.state.value} -> {to.value}"
            )
        self.state = to

    def __repr__(self) -> str:
        return f"Window({self.item!r}, {self.state.name})"


class Windows:
    """The windows of one attempt of a lane, each met once: `of` gives the same one again."""

    def __init__(self) -> None:
        self._by_item: dict[ExportItem, Window] = {}

    def of(self, item: ExportItem, state: WindowState = WindowState.PLANNED) -> Window:
        """`item`'s window; one met for the first time starts at `state`."""
        window = self._by_item.get(item)
        if window is None:
            window = self._by_item[item] = Window(item, state)
        return window

    def leave(self) -> None:
        """The lane stops: every window not done is left for a later run."""
        for window in self._by_item.values():
            if not window.done:
                window.move(WindowState.LEFT)
