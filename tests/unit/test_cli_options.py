"""Options shared by the commands that are more than parsing one value: the days of `stats`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from log_exporter.cli.options import stats_days
from log_exporter.errors import UsageError


def test_stats_days_are_the_n_days_before_today_oldest_first() -> None:
    today = datetime.now(UTC).date()
    assert stats_days(None, 3) == [today - timedelta(days=n) for n in (3, 2, 1)]
    assert stats_days(None, 1) == [today - timedelta(days=1)]


def test_stats_day_is_that_day_alone_unless_in_the_future() -> None:
    assert stats_days(date(2026, 1, 2), 7) == [date(2026, 1, 2)]
    today = datetime.now(UTC).date()
    assert stats_days(today, 7) == [today]
    with pytest.raises(UsageError, match=r"^--day .* is in the future \(today is .* UTC\)$"):
        stats_days(today + timedelta(days=1), 7)
