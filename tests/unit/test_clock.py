"""The clock skew seen on AWS's answers (clock.py): a fake clock's times, exact Date headers."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from log_exporter.aws.clock import ClockCheck, date_header, skew_margin, skew_seconds
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


# --- the margin follows the lease (review 12, §6) -------------------------------------------


@pytest.mark.parametrize(
    ("lease", "margin"),
    [
        (None, 30.0),  # the default lease
        (86_400, 30.0),
        (180, 30.0),
        (120, 20.0),  # two runners 2 * 20 s apart still see a lease renewed every 40 s held
        (60, 10.0),
        (12, 2.0),
        (3, 1.0),  # never below what a Date (whole seconds) can tell
        (1, 1.0),
        (0.3, 1.0),
    ],
)
def test_the_margin_is_a_sixth_of_a_short_lease(lease: float | None, margin: float) -> None:
    assert skew_margin(lease) == pytest.approx(margin)


def test_a_skew_a_long_lease_accepts_is_refused_with_a_short_one() -> None:
    check = ClockCheck()
    check.observe({"HTTPHeaders": {"date": date(T - 15)}}, T, T + 0.1)  # 14 s behind at least
    check.check(lease_seconds=180)
    with pytest.raises(ClockSkewError, match="within 10 s"):
        check.check(lease_seconds=60)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.49, 0.5, 0.51, 0.99])
@pytest.mark.parametrize("rounded", [False, True], ids=["truncated", "rounded"])
def test_the_same_clock_never_alarms_even_with_a_one_second_lease(
    fraction: float, rounded: bool
) -> None:
    """AWS on this machine's clock: its Date is the second of the answer (or, from a server that
    rounds, the nearest second), so the least skew it proves stays under the 1 s floor."""
    sent = T + fraction
    at = sent + 0.002  # when the server wrote its Date
    aws = round(at) if rounded else int(at)
    check = ClockCheck()
    check.observe({"HTTPHeaders": {"date": date(aws)}}, sent, sent + 0.004)
    check.check(lease_seconds=1)
