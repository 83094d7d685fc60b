"""The clock skew seen on AWS's answers (clock.py): a fake clock's times, exact Date headers."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from log_exporter.clock import ClockCheck, date_header, skew_seconds
from log_exporter.errors import ClockSkewError

T = 1_790_000_000.0  # a whole second


def date(at: float) -> str:
    return formatdate(at, usegmt=True)


@pytest.mark.parametrize(
    ("aws", "sent", "received", "skew"),
    [
        (T, T, T + 0.2, 0.0),  # in step
        (T, T + 0.9, T + 1.0, 0.0),  # the Date's second still holds our time: in step
        (T, T - 0.3, T - 0.1, 0.1),  # AWS's second began after our answer came: ahead
        (T + 120, T, T + 0.5, 119.5),  # AWS two minutes ahead (our clock is behind)
        (T - 120, T, T + 0.5, -119.0),  # AWS two minutes behind (our clock is ahead)
        (T, T + 5, T + 40, -4.0),  # asked after its second ended: behind by 4 s at least
    ],
)
def test_skew_is_the_least_the_answer_proves(
    aws: float, sent: float, received: float, skew: float
) -> None:
    assert skew_seconds(date(aws), sent, received) == pytest.approx(skew)


@pytest.mark.parametrize("header", [None, "", "yesterday", "Wed, 99 Foo 2026"])
def test_no_usable_date_means_no_skew(header: str | None) -> None:
    assert skew_seconds(header, T, T) is None


def test_the_date_of_an_answer_is_read_from_its_metadata() -> None:
    assert date_header({"HTTPHeaders": {"date": date(T)}}) == date(T)
    assert date_header({"HTTPHeaders": {}}) is None
    assert date_header(None) is None


def test_a_clock_within_the_margin_is_accepted_and_aws_now_follows_it() -> None:
    check = ClockCheck(margin=30)
    assert check.aws_now(T) == T  # nothing seen yet: our own clock
    check.observe({"HTTPHeaders": {"date": date(T - 20)}}, T, T + 0.1)
    check.check()
    assert check.aws_now(T) == pytest.approx(T - 19)


@pytest.mark.parametrize(("aws", "way"), [(T - 45, "ahead of"), (T + 45, "behind")])
def test_a_clock_off_by_more_than_the_margin_is_refused(aws: float, way: str) -> None:
    check = ClockCheck(margin=30)
    check.observe({"HTTPHeaders": {"date": date(aws)}}, T, T + 0.1)
    with pytest.raises(ClockSkewError, match=f"clock is 4[45] s {way} AWS's"):
        check.check()
    check.observe({"HTTPHeaders": {"date": date(T)}}, T, T + 0.1)  # set right meanwhile
    check.check()
