"""Release rules as pure functions of a clock time: durations, weekly and dated freeze windows
(across a week's end, a daylight-saving change and a year's end), and soak."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tf_release.model.errors import BadInput
from tf_release.model.rules import Overrides, Rules, format_duration, parse_duration, parse_window

LONDON = ZoneInfo("Europe/London")


def rules(*windows: str, timezone: str = "Europe/London", soak: str | None = None) -> Rules:
    return Rules(
        parse_duration(soak) if soak else None,
        tuple(parse_window(text) for text in windows),
        timezone,
        ZoneInfo(timezone),
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "duration"),
    [("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("1d", timedelta(days=1)),
     ("1d12h", timedelta(hours=36))],
)  # fmt: skip
def test_durations_are_minutes_hours_or_days(text: str, duration: timedelta) -> None:
    assert parse_duration(text) == duration


@pytest.mark.parametrize("text", ["-1h", "2", "h", "", "0m", "2 hours", "1.5h"])
def test_a_duration_that_is_not_positive_minutes_hours_or_days_is_refused(text: str) -> None:
    with pytest.raises(BadInput, match="invalid duration"):
        parse_duration(text)


def test_durations_are_shown_rounded_up_to_the_minute() -> None:
    assert format_duration(timedelta(hours=1, seconds=1)) == "1h 1m"
    assert format_duration(timedelta(days=1, hours=2)) == "1d 2h"


@pytest.mark.parametrize(
    "text",
    ["Fri 16:00", "Fri 16:00 - Mon", "Fry 16:00 - Mon 08:00", "Fri 24:00 - Mon 08:00",
     "Fri 16:00 - Fri 16:00", "2027-01-04 - 2026-12-22", "2026-02-30 - 2026-03-01"],
)  # fmt: skip
def test_a_window_that_does_not_parse_is_refused(text: str) -> None:
    with pytest.raises(BadInput, match="invalid freeze window"):
        parse_window(text)


def test_a_weekly_window_wraps_the_end_of_the_week() -> None:
    weekend = rules("Fri 16:00 - Mon 08:00")
    assert weekend.frozen(utc("2026-01-09T15:59")) is None  # Friday, before
    assert weekend.frozen(utc("2026-01-11T12:00")) is not None  # Sunday
    assert weekend.frozen(utc("2026-01-12T08:00")) is None  # Monday, as it ends
    held = weekend.frozen(utc("2026-01-09T16:00"))
    assert held is not None and held.until == datetime(2026, 1, 12, 8, 0, tzinfo=LONDON)


def test_a_weekly_window_within_the_week_holds_only_inside_it() -> None:
    nights = rules("Wed 22:00 - Thu 06:00", timezone="UTC")
    assert nights.frozen(utc("2026-01-07T23:00")) is not None
    assert nights.frozen(utc("2026-01-08T07:00")) is None


def test_windows_follow_the_wall_clock_across_the_spring_daylight_saving_change() -> None:
    """London goes to BST on Sunday 29 March 2026: the freeze still ends at 08:00 local, which
    is 07:00 UTC, and starts at 16:00 local."""
    weekend = rules("Fri 16:00 - Mon 08:00")
    held = weekend.frozen(utc("2026-03-27T16:30"))  # 16:30 GMT
    assert held is not None
    assert held.until == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert held.until.strftime("%a %H:%M %Z") == "Mon 08:00 BST"
    assert weekend.frozen(utc("2026-03-30T07:00")) is None


def test_windows_follow_the_wall_clock_across_the_autumn_daylight_saving_change() -> None:
    """London goes back to GMT on Sunday 25 October 2026: 16:00 local on the Friday before is
    15:00 UTC."""
    weekend = rules("Fri 16:00 - Mon 08:00")
    assert weekend.frozen(utc("2026-10-23T15:00")) is not None
    assert weekend.frozen(utc("2026-10-23T14:59")) is None
    held = weekend.frozen(utc("2026-10-24T12:00"))
    assert held is not None and held.until == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)


def test_a_freeze_ending_inside_the_hour_daylight_saving_skips_lifts_when_the_clock_jumps() -> None:
    """01:30 never comes in London on 29 March 2026 (01:00 GMT becomes 02:00 BST): the freeze
    lifts at the jump, 01:00 UTC, and says so as a wall time that exists."""
    night = rules("Sun 00:30 - Sun 01:30")
    held = night.frozen(utc("2026-03-29T00:45"))
    assert held is not None
    assert held.until == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert held.until.strftime("%a %H:%M %Z") == "Sun 02:00 BST"
    assert held.to_document()["until"] == "2026-03-29T01:00:00.000Z"
    assert night.frozen(utc("2026-03-29T01:00")) is None


def test_a_freeze_ending_in_the_hour_that_repeats_lifts_the_first_time_the_clock_says_it() -> None:
    """01:30 comes twice in London on 25 October 2026 (BST, then GMT): the first is 00:30 UTC."""
    held = rules("Sun 00:30 - Sun 01:30").frozen(utc("2026-10-24T23:45"))  # 00:45 BST
    assert held is not None and held.until is not None
    # (an ambiguous wall time never equals a time in another zone: compare instants in UTC)
    assert held.until.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_dated_window_holds_whole_days_both_included_across_the_year_boundary() -> None:
    holidays = rules("2026-12-22 - 2027-01-04")
    assert holidays.frozen(utc("2026-12-21T23:59")) is None
    assert holidays.frozen(utc("2026-12-22T00:00")) is not None
    assert holidays.frozen(utc("2027-01-04T23:59")) is not None
    assert holidays.frozen(utc("2027-01-05T00:00")) is None
    held = holidays.frozen(utc("2026-12-31T23:30"))
    assert held is not None and held.until == datetime(2027, 1, 5, tzinfo=LONDON)


def test_a_dated_window_is_read_in_the_environments_time_zone() -> None:
    """Midnight in Sydney is still the day before in UTC."""
    holidays = rules("2026-12-22 - 2027-01-04", timezone="Australia/Sydney")
    assert holidays.frozen(utc("2026-12-21T14:00")) is not None  # 01:00 on the 22nd there


def test_windows_that_meet_hold_until_the_last_of_them_ends() -> None:
    both = rules("Fri 16:00 - Mon 08:00", "2026-12-22 - 2027-01-04")
    held = both.frozen(utc("2027-01-01T12:00"))  # a Friday inside the holidays
    assert held is not None
    assert held.until == datetime(2027, 1, 5, tzinfo=LONDON)
    friday = rules("Fri 16:00 - Mon 08:00", "2026-12-18 - 2026-12-18")
    held = friday.frozen(utc("2026-12-18T10:00"))  # the day runs into the weekend
    assert held is not None and held.until == datetime(2026, 12, 21, 8, 0, tzinfo=LONDON)


def test_soak_holds_until_the_youngest_image_has_run_long_enough() -> None:
    soak = rules(soak="2h")
    since = {"api": utc("2026-03-24T09:00"), "worker": utc("2026-03-24T10:00")}
    held = soak.soaking("stage", since, utc("2026-03-24T11:00"))
    assert held is not None
    assert held.until == utc("2026-03-24T12:00")
    assert held.detail == "stage has run worker for 1h of 2h"
    assert soak.soaking("stage", since, utc("2026-03-24T12:00")) is None


def test_a_soak_a_second_from_its_end_never_claims_it_is_over() -> None:
    since = {"api": utc("2026-03-24T10:00")}
    held = rules(soak="2h").soaking("stage", since, utc("2026-03-24T11:59") + timedelta(seconds=59))
    assert held is not None and held.detail == "stage has run api for 1h 59m of 2h"


def test_soak_holds_an_image_the_source_does_not_run_until_overridden() -> None:
    held = rules(soak="30m").soaking("stage", {"api": None}, utc("2026-03-24T11:00"))
    assert held is not None and held.until is None
    assert held.describe("prod") == "prod is held by soak (stage does not run api) until overridden"


def test_no_soak_time_never_holds() -> None:
    assert rules().soaking("stage", {"api": None}, utc("2026-03-24T11:00")) is None


def test_a_refusal_names_the_rule_its_end_and_the_override() -> None:
    held = rules("Fri 16:00 - Mon 08:00").frozen(utc("2026-03-27T17:00"))
    assert held is not None
    assert held.refusal("prod") == (
        "prod is frozen (Fri 16:00 - Mon 08:00) until Mon 2026-03-30 08:00 BST: pass "
        '--override freeze --override-reason "…" to go anyway'
    )


@pytest.mark.parametrize(
    ("rules_named", "reason", "message"),
    [(["soak"], None, "needs --override-reason"), (["soak"], " ", "is empty"),
     (["speed"], "x", "the rules are soak, freeze and approvals"), ([], "x", "without --override"),
     (["soak"], "x" * 2000, "^--override-reason: the reason is 2000 characters long")],
)  # fmt: skip
def test_an_override_names_a_rule_and_gives_a_reason(
    rules_named: list[str], reason: str | None, message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        Overrides.of(rules_named, reason)
