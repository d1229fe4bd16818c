"""The release board: one self-contained HTML page of the whole project, for people who would
rather look than read.

`gather` is a view: one state read per environment (the state remembers its newest deployments)
and each environment's deployment listing back to the start of the window. `render` turns that
plain view model into HTML through the package's Jinja2 template, every value escaped.
"""

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from tf_release import naming, views
from tf_release.config import Config
from tf_release.errors import BadInput
from tf_release.manifest import Manifest, described
from tf_release.state import Attempt, Deployed, Deployment, DeploymentEntry, Recent
from tf_release.stores import Stores

MAX_DAYS = 366
READERS = 8  # records and manifests are read this many at a time

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Mark:
    """One deployment on the timeline; what the hover says."""

    environment: str
    version: int
    outcome: str
    finished_at: datetime
    by: str
    reason: str
    message: str = ""  # the first line of its error, when it did not succeed
    overrides: tuple[str, ...] = ()  # release rules it went past, and why

    @property
    def hover(self) -> str:
        """A line each: what, when and who; why; how it failed; the rules it went past."""
        head = (
            f"{self.environment} {naming.format_version(self.version)}: {self.outcome} at "
            f"{naming.format_minute(self.finished_at)} by {naming.person(self.by)}"
        )
        extra = [self.message] if self.message else []
        lines = [head, self.reason, *extra, *(f"override: {o}" for o in self.overrides)]
        return "\n".join(lines)


@dataclass(frozen=True)
class Card:
    """One environment as its card shows it."""

    environment: str
    promote_from: str
    deployed: Deployed | None
    latest_version: int = 0
    reason: str = ""  # of the manifest that runs
    overrides: tuple[str, ...] = ()  # of the deployment that put it there, if in the window
    lock: str | None = None  # who deploys now
    attempt: Attempt | None = None  # the newest deploy, when it did not succeed
    problem: str | None = None  # the state cannot be used: what is wrong, and the fix

    @property
    def pending(self) -> int | None:
        """A newer manifest than the one that runs: prepared, not (yet) deployed."""
        running = self.deployed.version if self.deployed else 0
        return self.latest_version if self.latest_version > running else None


@dataclass(frozen=True)
class Cell:
    """What an environment runs of one image: the tag (or short digest), the whole reference
    for the hover, and whether it differs from what its source environment runs."""

    text: str
    title: str
    differs: bool = False


@dataclass(frozen=True)
class Row:
    image: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Board:
    project: str
    generated_at: datetime
    days: int
    cards: tuple[Card, ...]  # in promotion order
    rows: tuple[Row, ...]  # an image each, a cell per card
    marks: tuple[Mark, ...]  # newest first

    @property
    def since(self) -> datetime:
        return self.generated_at - timedelta(days=self.days)

    @property
    def empty(self) -> bool:
        """Nothing to show: no environment runs, deploys or failed anything."""
        return not self.marks and all(
            card.deployed is None and card.lock is None and card.problem is None
            for card in self.cards
        )


def promotion_order(config: Config) -> list[str]:
    """Environments after the one they promote from, else in the order of the config file.
    A cycle cannot hang it: what is left goes last, in file order."""
    sources = {name: env.promote_from for name, env in config.environments.items()}
    placed: list[str] = []
    while len(placed) < len(sources):
        ready = [
            name
            for name, source in sources.items()
            if name not in placed and (source not in sources or source in placed)
        ]
        if not ready:
            return placed + [name for name in sources if name not in placed]
        placed.extend(ready)
    return placed


def gather(stores: Stores, days: int = 30) -> Board:
    """Everything the board shows, read once: a state per environment, which remembers its
    newest deployments, and a listing per environment back to the start of the window. Only a
    deployment the state no longer remembers (or a state written before it did) costs a read of
    its record and manifest."""
    if not 1 <= days <= MAX_DAYS:
        raise BadInput(f"--days must be between 1 and {MAX_DAYS}, not {days}")
    now = stores.clock()
    since = now - timedelta(days=days)
    order = promotion_order(stores.config)
    statuses = views.status(stores, order)
    remembered = {item.deployment_id: item for status in statuses for item in status.recent}
    entries = [  # a broken state's environment too: its records still say what happened
        (status.environment, entry)
        for status in statuses
        for entry in _entries_between(stores, status.environment, since, now)
    ]
    forgotten = [entry for _, entry in entries if entry.deployment_id not in remembered]
    for record in _read_parallel(stores.deployments.get, forgotten):
        remembered[record.deployment_id] = Recent.of(record, None)
    shown = [(environment, remembered[entry.deployment_id]) for environment, entry in entries]
    running = [
        (status.environment, status.deployed.version, remembered.get(status.deployed.deployment_id))
        for status in statuses
        if status.deployed is not None
    ]
    reasons = _reasons(stores, [*((e, item.version, item) for e, item in shown), *running])
    marks = tuple(
        _mark(environment, item, reasons[environment, item.version]) for environment, item in shown
    )
    cards = tuple(_card(stores.config, status, reasons) for status in statuses)
    return Board(
        project=stores.config.project,
        generated_at=now,
        days=days,
        cards=cards,
        rows=_rows(stores.config, cards),
        marks=tuple(sorted(marks, key=lambda mark: mark.finished_at, reverse=True)),
    )


def _entries_between(
    stores: Stores, environment: str, since: datetime, now: datetime
) -> Iterable[DeploymentEntry]:
    """The listing is newest first: it starts at `now` (a clock set back shows its past only)
    and stops at the first deployment older than the window."""
    for entry in stores.deployments.entries(environment, at=now):
        if entry.finished_at < since:
            return
        yield entry


def _read_parallel(read: Callable[[T], R], keys: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        return list(pool.map(read, keys))


def _reasons(
    stores: Stores, shown: list[tuple[str, int, Recent | None]]
) -> dict[tuple[str, int], str]:
    """The reason of each (environment, version) shown: as the state remembers it, else read
    from its manifest."""
    known: dict[tuple[str, int], str | None] = {}
    for environment, version, item in shown:
        remembered = item.reason if item else None
        known[environment, version] = known.get((environment, version)) or remembered
    wanted = sorted(key for key, reason in known.items() if reason is None)
    read = dict(
        zip(wanted, _read_parallel(lambda key: stores.manifests.get(*key), wanted), strict=True)
    )
    return {
        key: reason if reason is not None else _reason(read[key], *key)
        for key, reason in known.items()
    }


def _reason(manifest: Manifest | None, environment: str, version: int) -> str:
    if manifest is None:
        return f"(manifest {naming.format_version(version)} of {environment} is missing)"
    return manifest.reason


def overrides_of(record: Deployment | Deployed | Recent) -> tuple[str, ...]:
    """`freeze overridden by alice: the reason` for each release rule the deploy went past."""
    return tuple(override.describe() for override in record.overrides)


def _mark(environment: str, deployment: Recent, reason: str) -> Mark:
    return Mark(
        environment=environment,
        version=deployment.version,
        outcome=deployment.outcome,
        finished_at=deployment.finished_at,
        by=deployment.by,
        reason=reason,
        message=deployment.message,
        overrides=overrides_of(deployment),
    )


def _card(
    config: Config,
    status: views.EnvironmentStatus,
    reasons: dict[tuple[str, int], str],
) -> Card:
    environment, deployed = status.environment, status.deployed
    overrides: tuple[str, ...]
    reason, overrides = "", ()
    if deployed is not None:
        reason = reasons[environment, deployed.version]
        overrides = overrides_of(deployed)
    return Card(
        environment=environment,
        promote_from=config.environments[environment].promote_from,
        deployed=deployed,
        latest_version=status.latest_version,
        reason=reason,
        overrides=overrides,
        lock=status.describe_lock(),
        attempt=status.last_attempt if status.lock is None else None,
        problem=status.problem,
    )


def _rows(config: Config, cards: tuple[Card, ...]) -> tuple[Row, ...]:
    """An image a row, an environment a column; a cell differs when its environment runs
    something else than the environment it promotes from (a moved tag's digest counts)."""
    running = {
        card.environment: described(card.deployed.images, card.deployed.digests)
        for card in cards
        if card.deployed is not None
    }
    images = sorted({name for described_images in running.values() for name in described_images})
    return tuple(
        Row(image, tuple(_cell(card, image, running) for card in cards)) for image in images
    )


def _cell(card: Card, image: str, running: dict[str, dict[str, str]]) -> Cell:
    if card.problem is not None:  # what runs there is unknown, not nothing
        return Cell("?", f"unknown: {card.problem}")
    mine = running.get(card.environment, {}).get(image)
    source = running.get(card.promote_from)
    differs = source is not None and card.environment in running and source.get(image) != mine
    text = "—" if mine is None else short_reference(mine)
    title = mine or f"{card.environment} does not run {image}"
    if differs:
        theirs = source.get(image) if source else None
        title += f"; {card.promote_from} runs {theirs or 'none'}"
    return Cell(text, title, differs)


def short_reference(url: str) -> str:
    """What tells two images of a repository apart at a glance: the tag, else the short digest
    (`registry/api:1.4 (sha256:ab12…)` → `1.4`, `registry/api@sha256:…` → `sha256:ab12…`)."""
    reference = url.split(" ", 1)[0]
    name = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" in name:
        return name.split(":", 1)[1]
    digest = naming.digest_in(reference)
    return naming.short_digest(digest) if digest else reference


# The timeline, drawn as inline SVG: geometry here, shapes in the template.

WIDTH = 1000
LEFT = 90  # lane labels
RIGHT = 24
TOP = 34  # date labels
LANE = 44
GAP = 24  # the least distance between two marks of a lane, so each stays visible


@dataclass(frozen=True)
class Placed:
    mark: Mark
    x: float
    y: float


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    height: float
    lanes: tuple[tuple[str, float], ...]  # environment, y
    ticks: tuple[Tick, ...]
    marks: tuple[Placed, ...]
    locks: tuple[tuple[Card, float], ...]  # a deploy in progress: its card and lane's y
    now: float
    width: int = WIDTH


def timeline(board: Board) -> Timeline:
    """A lane per environment; each deployment where it finished, unless it would cover a
    neighbour in its lane: then the marks too close spread around their true times, each moved
    as little as can be, so a mark is not drawn before (or after) another lane's by more than
    its burst needs."""
    start, span = board.since, (board.generated_at - board.since).total_seconds()
    right = WIDTH - RIGHT

    def x_of(moment: datetime) -> float:
        share = (moment - start).total_seconds() / span
        return LEFT + min(max(share, 0.0), 1.0) * (right - LEFT)

    lanes = tuple((card.environment, TOP + LANE * (i + 0.5)) for i, card in enumerate(board.cards))
    y_of = dict(lanes)
    placed: list[Placed] = []
    for environment, y in lanes:
        lane = [mark for mark in board.marks if mark.environment == environment][::-1]
        xs = spread([x_of(mark.finished_at) for mark in lane], LEFT, right)
        placed.extend(Placed(mark, x, y) for mark, x in reversed(list(zip(lane, xs, strict=True))))
    step = max(1, -(-board.days // 6))  # about six date labels
    first = (start + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    ticks = tuple(
        Tick(round(x_of(day), 1), day.strftime("%d %b") if (day - first).days % step == 0 else "")
        for day in _days(first, board.generated_at)
    )
    locks = tuple((card, y_of[card.environment]) for card in board.cards if card.lock)
    return Timeline(TOP + LANE * len(lanes) + 8, lanes, ticks, tuple(placed), locks, right)


def spread(xs: list[float], low: int, high: int) -> list[float]:
    """Whole-pixel places for marks at `xs` (ascending), GAP apart (less when the lane holds
    too many to fit), within low..high: each as near its own x as can be (least squares, by
    pooling adjacent violators), so a mark with room stays put and a burst spreads evenly
    around the middle of its true times."""
    count = len(xs)
    gap = min(GAP, (high - low) // max(count - 1, 1))
    blocks: list[tuple[float, int]] = []  # runs of marks set side by side: their mean, size
    for i, x in enumerate(xs):
        mean, size = x - i * gap, 1  # less its share of the gaps: then a run is one value
        while blocks and blocks[-1][0] > mean:
            before, together = blocks.pop()
            mean, size = (before * together + mean * size) / (together + size), together + size
        blocks.append((mean, size))
    starts = [round(mean) for mean, size in blocks for _ in range(size)]
    return [
        float(max(min(at + i * gap, high - (count - 1 - i) * gap), low + i * gap))
        for i, at in enumerate(starts)
    ]


def _days(first: datetime, end: datetime) -> list[datetime]:
    count = max(0, (end - first).days + 1)
    return [first + timedelta(days=n) for n in range(count) if first + timedelta(days=n) <= end]


def render(board: Board) -> str:
    """The page: HTML with its styles inline and a policy that lets it load nothing else."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    environment = Environment(
        loader=PackageLoader("tf_release", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        version=naming.format_version, person=naming.person, when=naming.format_minute
    )
    template = environment.get_template("board.html.j2")
    return template.render(board=board, timeline=timeline(board))
