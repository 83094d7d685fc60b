"""A window's life (lane/window.py): every legal move is allowed, every other one raises
IllegalMove, and a done state is never left."""

from __future__ import annotations

import itertools

import pytest

from log_exporter.core.plan import ExportItem
from log_exporter.core.windows import Window as Span
from log_exporter.lane.window import DONE, MOVES, IllegalMove, Window, Windows, WindowState

S = WindowState
ITEM = ExportItem(Span(0, 86_400_000 - 1), "/app/web")
LEGAL = {
    (S.PLANNED, S.INTENT),
    (S.PLANNED, S.EMPTY),
    (S.PLANNED, S.FAILED),
    (S.PLANNED, S.LEFT),
    (S.INTENT, S.CREATED),
    (S.INTENT, S.WRITTEN),
    (S.INTENT, S.PLANNED),
    (S.INTENT, S.FAILED),
    (S.INTENT, S.LEFT),
    (S.CREATED, S.ENDED),
    (S.CREATED, S.FAILED),
    (S.CREATED, S.LEFT),
    (S.ENDED, S.RECORDED),
    (S.ENDED, S.PLANNED),
    (S.ENDED, S.FAILED),
    (S.ENDED, S.LEFT),
    (S.WRITTEN, S.RECORDED),
    (S.WRITTEN, S.FAILED),
    (S.WRITTEN, S.LEFT),
}
ALL = list(itertools.product(S, S))


def test_the_table_is_the_documented_one() -> None:
    assert {(a, b) for a, tos in MOVES.items() for b in tos} == LEGAL
    assert set(MOVES) == set(S)


@pytest.mark.parametrize(("start", "to"), sorted(LEGAL, key=str), ids=str)
def test_every_legal_move_is_allowed(start: WindowState, to: WindowState) -> None:
    window = Window(ITEM, start)
    window.move(to)
    assert window.state is to


@pytest.mark.parametrize(("start", "to"), [m for m in ALL if m not in LEGAL], ids=str)
def test_every_other_move_is_refused(start: WindowState, to: WindowState) -> None:
    window = Window(ITEM, start)
    with pytest.raises(IllegalMove, match=f"{start.value} -> {to.value}"):
        window.move(to)
    assert window.state is start


@pytest.mark.parametrize("done", sorted(DONE, key=str), ids=str)
def test_a_done_state_is_never_left(done: WindowState) -> None:
    window = Window(ITEM, done)
    assert window.done
    for to in S:
        with pytest.raises(IllegalMove):
            window.move(to)
    assert window.state is done


def test_an_export_and_a_direct_read_go_their_ways_to_recorded() -> None:
    export, read = Window(ITEM), Window(ITEM)
    for to in (S.INTENT, S.CREATED, S.ENDED, S.RECORDED):
        export.move(to)
    for to in (S.INTENT, S.WRITTEN, S.RECORDED):
        read.move(to)
    assert export.done and read.done


def test_windows_gives_one_window_an_item_and_leaves_the_unfinished() -> None:
    windows = Windows()
    first = windows.of(ITEM)
    assert windows.of(ITEM, S.INTENT) is first and first.state is S.PLANNED
    other = windows.of(ExportItem(Span(86_400_000, 2 * 86_400_000 - 1), "/app/web"), S.INTENT)
    first.move(S.EMPTY)

    windows.leave()

    assert [first.state, other.state] == [S.EMPTY, S.LEFT]
