"""Release rules: soak time before a promotion and freeze windows, as pure functions of the
config, a clock time and what the source environment runs. They answer "clear" (None) or a
`Hold` saying which rule holds and until when; they know nothing of AWS.

Windows are read in the environment's time zone on its wall clock, so "Fri 16:00 - Mon 08:00"
ends at 08:00 local time on either side of a daylight-saving change.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tf_release.model import naming
from tf_release.model.errors import BadInput

SOAK, FREEZE, APPROVALS = "soak", "freeze", "approvals"
RULES = (SOAK, FREEZE, APPROVALS)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
WEEK_MINUTES = 7 * 24 * 60
UTC_NAME = "UTC"

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_WEEKLY = re.compile(r"([A-Z][a-z]{2}) (\d{2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `1d` (or `1d12h`, `90s`): a soak time or a wait, more than zero."""
    found = _DURATION.fullmatch(text.strip())
    if not text.strip() or found is None:
        raise BadInput(f"invalid duration {text!r}: use minutes, hours or days, e.g. 30m, 2h, 1d")
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not duration:
        raise BadInput(f"invalid duration {text!r}: must be more than zero")
    return duration


def format_duration(duration: timedelta, up: bool = True) -> str:
    """`1d 2h`, `1h 30m`, `45m`: whole minutes, rounded up (a time left is never understated),
    or down (`up=False`: a time passed is never overstated)."""
    seconds = int(duration.total_seconds())
    minutes = -(-seconds // 60) if up else seconds // 60
    days, rest = divmod(max(minutes, 0), 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return " ".join(part for part in parts if part) or "0m"


def zone(name: str) -> tzinfo:
    """An IANA time zone by name (`Europe/London`)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(
            f"unknown time zone {name!r}: use an IANA name, e.g. Europe/London"
        ) from None


@dataclass(frozen=True)
class Weekly:
    """Every week from `start` to `end`, minutes into the week (Monday 00:00 is 0); may wrap
    the week's end (`Fri 16:00 - Mon 08:00`)."""

    text: str
    start: int
    end: int

    def contains(self, local: datetime) -> bool:
        minute = _minute_of_week(local)
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def ends_after(self, local: datetime) -> datetime:
        """The first end of the window after `local` (wall clock, no zone)."""
        floor = local.replace(second=0, microsecond=0)
        return floor + timedelta(minutes=(self.end - _minute_of_week(local)) % WEEK_MINUTES)


@dataclass(frozen=True)
class Dated:
    """Whole days, both included (`2026-12-22 - 2027-01-04`)."""

    text: str
    first: date
    last: date

    def contains(self, local: datetime) -> bool:
        return self.first <= local.date() <= self.last

    def ends_after(self, local: datetime) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time())


Window = Weekly | Dated


def _minute_of_week(local: datetime) -> int:
    return local.weekday() * 24 * 60 + local.hour * 60 + local.minute


def parse_window(text: str) -> Window:
    """`Fri 16:00 - Mon 08:00` (weekly) or `2026-12-22 - 2027-01-04` (dated, days inclusive)."""
    parts = re.split(r"\s+-\s+", text.strip())
    if len(parts) == 2 and all(_DATE.fullmatch(part) for part in parts):
        try:
            first, last = (date.fromisoformat(part) for part in parts)
        except ValueError:
            raise BadInput(f"invalid freeze window {text!r}: no such date") from None
        if last < first:
            raise BadInput(f"invalid freeze window {text!r}: it ends before it starts")
        return Dated(text, first, last)
    found = [_WEEKLY.fullmatch(part) for part in parts]
    if len(parts) != 2 or None in found:
        raise BadInput(
            f"invalid freeze window {text!r}: use 'Fri 16:00 - Mon 08:00' or "
            "'2026-12-22 - 2027-01-04'"
        )
    minutes = []
    for match in found:
        assert match is not None
        day, hour, minute = match.group(1), int(match.group(2)), int(match.group(3))
        if day not in DAYS or hour > 23 or minute > 59:
            raise BadInput(
                f"invalid freeze window {text!r}: days are {', '.join(DAYS)}, times 00:00-23:59"
            )
        minutes.append(DAYS.index(day) * 24 * 60 + hour * 60 + minute)
    if minutes[0] == minutes[1]:
        raise BadInput(f"invalid freeze window {text!r}: it starts when it ends")
    return Weekly(text, minutes[0], minutes[1])


@dataclass(frozen=True)
class Hold:
    """A rule holds a release: `until` when it ends (None: only an override lets it through),
    `detail` what holds it."""

    rule: str
    until: datetime | None
    detail: str
    way: str = ""  # what lifts it besides an override: "approve it with `tf-release approve …`"

    def ends(self) -> str:
        """`until Mon 2026-03-30 08:00 BST`, in the environment's time zone."""
        if self.rule == APPROVALS:
            return "until approved"
        return "until overridden" if self.until is None else f"until {format_local(self.until)}"

    def describe(self, environment: str) -> str:
        """`prod is frozen (Fri 16:00 - Mon 08:00) until Mon 2026-03-30 08:00 BST`."""
        ends = self.ends()
        if self.rule == FREEZE:
            return f"{environment} is frozen ({self.detail}) {ends}"
        if self.rule == APPROVALS:
            return f"{environment} needs {self.detail}"
        return f"{environment} is held by soak ({self.detail}) {ends}"

    def refusal(self, environment: str) -> str:
        """The one line of a refused command: the rule, when it ends, and the way past it."""
        way = f"{self.way}, or pass" if self.way else "pass"
        return (
            f"{self.describe(environment)}: {way} --override {self.rule} "
            '--override-reason "…" to go anyway'
        )

    def to_document(self) -> dict[str, object]:
        return {
            "held": True,
            "rule": self.rule,
            "until": None if self.until is None else naming.format_time(self.until),
        }


CLEAR: dict[str, object] = {"held": False, "rule": None, "until": None}


def instant(wall: datetime, zone: tzinfo) -> datetime:
    """The first moment the clocks of `zone` show the wall time `wall` or later: a wall time in
    the hour a daylight-saving change skips never comes, and is passed when the clocks jump."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # before the jump
    high = first.astimezone(UTC)  # after it
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) < wall:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0).astimezone(zone)


def format_local(moment: datetime) -> str:
    """`Mon 2026-03-30 08:00 BST`: a time in the zone it carries."""
    return moment.strftime("%a %Y-%m-%d %H:%M %Z")


@dataclass(frozen=True)
class Rules:
    """An environment's release rules (none by default)."""

    soak: timedelta | None = None
    freeze: tuple[Window, ...] = ()
    timezone: str = UTC_NAME
    zone: tzinfo = field(default=ZoneInfo(UTC_NAME), compare=False)
    approvals: int = 0  # approvals a manifest needs here, by others than its author
    approvers: tuple[str, ...] = ()  # who may approve (ARN patterns); empty: anyone else

    @property
    def any(self) -> bool:
        return self.soak is not None or bool(self.freeze) or self.approvals > 0

    def frozen(self, now: datetime) -> Hold | None:
        """The freeze holding at `now`, until the last of the windows that follow on end."""
        local = now.astimezone(self.zone).replace(tzinfo=None)
        holding = [window for window in self.freeze if window.contains(local)]
        if not holding:
            return None
        end = local
        for _ in range(len(self.freeze) + 1):  # windows that meet or overlap hold on
            inside = [window for window in self.freeze if window.contains(end)]
            if not inside:
                break
            end = max(window.ends_after(end) for window in inside)
        detail = ", ".join(window.text for window in holding)
        return Hold(FREEZE, instant(end, self.zone), detail)

    def soaking(
        self, source: str, since: Mapping[str, datetime | None], now: datetime
    ) -> Hold | None:
        """Held while any image has run in `source` for less than the soak time; an image the
        source does not run (since None) holds until overridden."""
        if self.soak is None or not since:
            return None
        never = sorted(name for name, start in since.items() if start is None)
        if never:
            return Hold(SOAK, None, f"{source} does not run {', '.join(never)}")
        starts = {name: start for name, start in since.items() if start is not None}
        young = {name: start for name, start in starts.items() if now - start < self.soak}
        if not young:
            return None
        latest = max(young.values())
        names = ", ".join(sorted(young))
        ran = format_duration(now - latest, up=False) if now > latest else "0m"
        detail = f"{source} has run {names} for {ran} of {format_duration(self.soak)}"
        return Hold(SOAK, (latest + self.soak).astimezone(self.zone), detail)


NO_RULES = Rules()


def load_rules(table: Mapping[str, object], where: str) -> Rules:
    """An environment's `soak`, `freeze` and `timezone` keys; errors name the key."""
    name = str(table.get("timezone", UTC_NAME))
    try:
        found = zone(name)
    except BadInput as error:
        raise BadInput(f"{where}.timezone: {error}") from None
    soak = None
    if "soak" in table:
        try:
            soak = parse_duration(str(table["soak"]))
        except BadInput as error:
            raise BadInput(f"{where}.soak: {error}") from None
    windows = []
    for text in _texts(table.get("freeze", ())):
        try:
            windows.append(parse_window(text))
        except BadInput as error:
            raise BadInput(f"{where}.freeze: {error}") from None
    approvers = tuple(_texts(table.get("approvers", ())))
    approvals = int(str(table.get("approvals", 0)))
    if approvers and not approvals:
        raise BadInput(f"{where}.approvers: names who may approve, but approvals is not set")
    return Rules(soak, tuple(windows), name, found, approvals, approvers)


def _texts(value: object) -> Iterable[str]:
    return [str(item) for item in value] if isinstance(value, list | tuple) else ()


@dataclass(frozen=True)
class Overrides:
    """The rules an operator goes past (`--override`), and why (`--override-reason`)."""

    rules: frozenset[str] = frozenset()
    reason: str = ""

    @classmethod
    def of(cls, rules: Iterable[str], reason: str | None) -> "Overrides":
        named = frozenset(rules)
        unknown = sorted(named - set(RULES))
        if unknown:
            rules = f"{', '.join(RULES[:-1])} and {RULES[-1]}"
            raise BadInput(f"--override {unknown[0]}: the rules are {rules}")
        if named and reason is None:
            raise BadInput("--override needs --override-reason: say why the rule is overridden")
        if reason is not None and not reason.strip():
            raise BadInput("--override-reason is empty: say why the rule is overridden")
        if reason is not None and not named:
            raise BadInput("--override-reason without --override: name the rule to override")
        if reason is None:
            return cls(named)
        try:
            return cls(named, naming.check_reason(reason))
        except BadInput as error:
            raise BadInput(f"--override-reason: {error}") from None


NO_OVERRIDES = Overrides()
