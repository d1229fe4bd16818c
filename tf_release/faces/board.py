"""The release board: one self-contained HTML page of the whole project, for people who would
rather look than read.

`gather` is a view: one state read per environment (the state remembers its newest deployments)
and each environment's deployment listing back to the start of the window. `render` turns that
plain view model into HTML through the package's Jinja2 template, every value escaped.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate, pairwise

from tf_release.flows import views
from tf_release.model import naming
from tf_release.model.config import Config
from tf_release.model.errors import BadInput
from tf_release.model.index import periods_between
from tf_release.model.manifest import Manifest, described
from tf_release.model.state import Attempt, Deployed, Deployment, Recent
from tf_release.stores.bundle import Stores
from tf_release.stores.parallel import in_parallel

MAX_DAYS = 366


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
    awaiting: str | None = None  # the newest manifest, held by the approvals rule

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
    shown = []
    for status in statuses:  # a broken state's environment too: its record says what happened
        for item in _deployments(stores, status, since, now):
            remembered[item.deployment_id] = item
            if since <= item.finished_at <= now:
                shown.append((status.environment, item))
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


def _deployments(
    stores: Stores, status: views.EnvironmentStatus, since: datetime, now: datetime
) -> list[Recent]:
    """The environment's deployments that finished in [since, now], and any others read on the
    way (the one that put the running version there, say: its reason is then known). The state
    remembers the newest, and a period's index (index.py) those of its period from its
    `covers_from` on; only the stretch before what they cover is listed, and a deployment found
    there alone costs a read of its record (a project older than the indexes, say)."""
    environment = status.environment
    if status.problem is None and status.latest_version == 0:
        return []  # no manifest yet, so no deployment
    found = {item.deployment_id: item for item in status.recent}
    # everything from `known_from` to now is known: the state's newest deployments, then each
    # period's index back from now, as long as they leave no stretch uncovered
    known_from = status.recent[-1].finished_at if status.recent else now
    if known_from > since:
        starts = periods_between(since, now)
        periods = in_parallel(lambda start: stores.index.period(environment, start), starts)
        for period in periods:
            if period is None or period.ends < known_from:
                break
            found.update({item.deployment_id: item for item in period.deployments})
            known_from = min(known_from, period.covers_from)
    if known_from > since:  # from there back to `since`, only the listing knows
        listed = []
        for entry in stores.deployments.entries(environment, at=known_from):
            if entry.finished_at < since:
                break
            if entry.deployment_id not in found:
                listed.append(entry)
        for record in in_parallel(stores.deployments.get, listed):
            found[record.deployment_id] = Recent.of(record, None)
    return sorted(found.values(), key=lambda item: (item.finished_at, item.version), reverse=True)


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
        zip(wanted, in_parallel(lambda key: stores.manifests.get(*key), wanted), strict=True)
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
        awaiting=status.describe_awaiting(),
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
SHIFT = GAP  # the farthest a deployment is drawn from its time (and half a pixel of rounding)
RADIUS = 7  # of a mark, and of the round ends of a cluster's bar
CHAR = 6  # the width of a character of a label (10 px type), rounded up
LISTED = 20  # a cluster's hover lists this many of its deployments, then counts the rest
SEVERITY = ("failed", "abandoned", "cancelled", "succeeded")  # worst first


@dataclass(frozen=True)
class Placed:
    mark: Mark
    x: float
    y: float


@dataclass(frozen=True)
class Cluster:
    """Deployments of a lane too close together to draw apart without drawing some of them far
    from when they happened: one bar over their true time span, from the first (x1) to the last
    (x2), moved no more than SHIFT; coloured by the worst outcome in it."""

    marks: tuple[Mark, ...]  # newest first
    x1: float
    x2: float
    y: float

    @property
    def x(self) -> float:
        return (self.x1 + self.x2) / 2

    @property
    def bar(self) -> tuple[float, float]:
        """Where the bar starts and how wide it is, its round ends (a little over a mark's
        radius) included."""
        return round(self.x1 - RADIUS - 1, 1), round(self.x2 - self.x1 + 2 * RADIUS + 2, 1)

    @property
    def outcome(self) -> str:
        """One failure makes the cluster red: failed, abandoned, cancelled, then succeeded."""
        return min((mark.outcome for mark in self.marks), key=_severity)

    @property
    def label(self) -> str:
        """`v5-v20 x16`, drawn with an en dash and a multiplication sign."""
        return cluster_label([mark.version for mark in self.marks])

    @property
    def label_x(self) -> float:
        """Over the bar, yet inside the picture and off the lane's name."""
        half = CHAR * len(self.label) / 2
        return round(min(max(self.x, LEFT - 10 + half), WIDTH - 2 - half), 1)

    @property
    def hover(self) -> str:
        """What, when and how it went; then a line for each deployment, newest first (version,
        outcome, time, who, why and, when it did not succeed, its error), the first LISTED."""
        newest, oldest = self.marks[0], self.marks[-1]
        counts = Counter(mark.outcome for mark in self.marks)
        tally = ", ".join(f"{counts[o]} {o}" for o in sorted(counts, key=_severity, reverse=True))
        head = (
            f"{newest.environment} {versions_of([m.version for m in self.marks])}: "
            f"{len(self.marks)} deployments from {naming.format_minute(oldest.finished_at)} "
            f"to {naming.format_minute(newest.finished_at)} ({tally})"
        )
        lines = [head, *(_one_line(mark) for mark in self.marks[:LISTED])]
        if len(self.marks) > LISTED:
            lines.append(f"\u2026 and {len(self.marks) - LISTED} more")
        return "\n".join(lines)


def _severity(outcome: str) -> int:
    return SEVERITY.index(outcome) if outcome in SEVERITY else 0


def versions_of(versions: Sequence[int]) -> str:
    """`v5-v20` (an en dash), lowest to highest (a rollback redeploys an older one); or `v5`."""
    low, high = min(versions), max(versions)
    if low == high:
        return naming.format_version(low)
    return f"{naming.format_version(low)}\u2013{naming.format_version(high)}"


def cluster_label(versions: Sequence[int]) -> str:
    return f"{versions_of(versions)} \u00d7{len(versions)}"


def _one_line(mark: Mark) -> str:
    line = (
        f"{naming.format_version(mark.version)}: {mark.outcome} at "
        f"{naming.format_minute(mark.finished_at)} by {naming.person(mark.by)}: "
        f"{_first_line(mark.reason)}"
    )
    return f"{line} \u2014 {_first_line(mark.message)}" if mark.message else line


def _first_line(text: str, limit: int = 100) -> str:
    lines = text.strip().splitlines() or [""]
    first = lines[0].strip()
    if len(first) > limit:
        return first[: limit - 1].rstrip() + "\u2026"
    return first + (" \u2026" if len(lines) > 1 else "")


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    height: float
    lanes: tuple[tuple[str, float], ...]  # environment, y
    ticks: tuple[Tick, ...]
    marks: tuple[Placed, ...]  # a deployment drawn alone; newest first in each lane
    clusters: tuple[Cluster, ...]  # deployments drawn as one
    locks: tuple[tuple[Card, float], ...]  # a deploy in progress: its card and lane's y
    now: float
    width: int = WIDTH


def timeline(board: Board) -> Timeline:
    """A lane per environment; each deployment where it finished. Marks that would cover each
    other are nudged apart (see `lay_out`); deployments too many to nudge without drawing one far
    from its time are one cluster at their true span. Either way no deployment is drawn more than
    SHIFT from its time, so across lanes marks keep their time order but for such a nudge."""
    start, span = board.since, (board.generated_at - board.since).total_seconds()
    right = WIDTH - RIGHT

    def x_of(moment: datetime) -> float:
        share = (moment - start).total_seconds() / span
        return LEFT + min(max(share, 0.0), 1.0) * (right - LEFT)

    lanes = tuple((card.environment, TOP + LANE * (i + 0.5)) for i, card in enumerate(board.cards))
    y_of = dict(lanes)
    placed: list[Placed] = []
    clusters: list[Cluster] = []
    for environment, y in lanes:
        lane = [mark for mark in board.marks if mark.environment == environment][::-1]
        xs = [x_of(mark.finished_at) for mark in lane]
        alone: list[Placed] = []
        for i, j, x in lay_out(xs, [mark.version for mark in lane], LEFT, right):
            if j - i == 1:
                alone.append(Placed(lane[i], x, y))
                continue
            half = (xs[j - 1] - xs[i]) / 2
            together = tuple(reversed(lane[i:j]))
            clusters.append(Cluster(together, round(x - half, 1), round(x + half, 1), y))
        placed.extend(reversed(alone))
    step = max(1, -(-board.days // 6))  # about six date labels
    first = (start + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    ticks = tuple(
        Tick(round(x_of(day), 1), day.strftime("%d %b") if (day - first).days % step == 0 else "")
        for day in _days(first, board.generated_at)
    )
    locks = tuple((card, y_of[card.environment]) for card in board.cards if card.lock)
    height = TOP + LANE * len(lanes) + 8
    return Timeline(height, lanes, ticks, tuple(placed), tuple(clusters), locks, right)


def lay_out(
    xs: Sequence[float], versions: Sequence[int], low: float, high: float
) -> list[tuple[int, int, float]]:
    """Where to draw a lane's deployments, at true places `xs` (ascending) within low..high:
    groups `(first, end, x)`, `xs[first:end]` drawn at x: one mark, or a cluster whose bar (their
    true span) has its middle at x.

    Marks are GAP apart, each as near its own x as can be (least squares, by pooling adjacent
    violators, a cluster weighing as many as it holds), at whole pixels: a mark with room stays
    put, two or three close ones share the nudge. When a run of them would have to move more than
    SHIFT (four at one moment would: the outer ones by 1.5 GAP; three at "now" too, the first by
    2 GAP), its closest neighbours join into a cluster, which needs only its own span (and room
    for its label), and so on until no deployment is drawn more than SHIFT from its time. The
    closest join first, so a burst becomes one cluster before it takes in a mark hours away; at
    worst a lane is one cluster from its first deployment to its last, drawn where they were."""
    if not xs:
        return []
    groups = [(i, i + 1) for i in range(len(xs))]
    while True:
        middles = [(xs[first] + xs[end - 1]) / 2 for first, end in groups]
        halves = [(xs[end - 1] - xs[first]) / 2 for first, end in groups]
        rooms = [_room(halves[k], versions[first:end]) for k, (first, end) in enumerate(groups)]
        offsets = list(accumulate((a + b for a, b in pairwise(rooms)), initial=0.0))
        pooled = _pool([m - o for m, o in zip(middles, offsets, strict=True)], groups)
        lowest, highest = low + halves[0], high - halves[-1] - offsets[-1]
        starts = [max(min(float(round(mean)), highest), lowest) for mean in pooled]
        drawn = [at + offset for at, offset in zip(starts, offsets, strict=True)]
        far = [  # or, when the lane is too full, out of it
            abs(x - m) > SHIFT + 0.5 or not low - 0.5 <= x - h <= x + h <= high + 0.5
            for x, m, h in zip(drawn, middles, halves, strict=True)
        ]
        joined = _join(xs, versions, groups, rooms, starts, far)
        if joined == groups:
            return [(first, end, x) for (first, end), x in zip(groups, drawn, strict=True)]
        groups = joined


def _room(half: float, versions: Sequence[int]) -> float:
    """Half the room a mark or cluster takes in its lane: with GAP / 2 to spare around a mark's
    circle, around a cluster's bar, and a little around its label."""
    if len(versions) == 1:
        return GAP / 2
    return math.ceil(max(half + GAP / 2, CHAR * len(cluster_label(versions)) / 2 + 4))


def _pool(values: list[float], groups: list[tuple[int, int]]) -> list[float]:
    """The ascending sequence nearest `values`, each weighing its group's size (least squares),
    by pooling adjacent violators."""
    blocks: list[tuple[float, int, int]] = []  # runs set side by side: their mean, weight, size
    for value, (first, end) in zip(values, groups, strict=True):
        mean, weight, size = value, end - first, 1
        while blocks and blocks[-1][0] > mean:
            before, theirs, count = blocks.pop()
            mean = (before * theirs + mean * weight) / (theirs + weight)
            weight, size = weight + theirs, size + count
        blocks.append((mean, weight, size))
    return [mean for mean, _, size in blocks for _ in range(size)]


def _join(
    xs: Sequence[float],
    versions: Sequence[int],
    groups: list[tuple[int, int]],
    rooms: list[float],
    starts: list[float],
    far: list[bool],
) -> list[tuple[int, int]]:
    """The groups, some joined: in each run drawn side by side (one start) that holds one drawn
    too far from its time, the closest chains of neighbours (true gaps up to twice the run's
    least, or a pixel; failing that, twice as far, and so on) that take less room as a cluster
    than apart. A cluster's label is wide, so two marks alone are nudged rather than joined; if
    nothing helps, the whole run is one."""
    joins: list[list[int]] = []  # runs of group indices to join
    k = 0
    while k < len(groups):
        run = [k]
        while run[-1] + 1 < len(groups) and starts[run[-1] + 1] == starts[k]:
            run.append(run[-1] + 1)
        k = run[-1] + 1
        if len(run) < 2 or not any(far[i] for i in run):
            continue
        gaps = [xs[groups[i + 1][0]] - xs[groups[i][1] - 1] for i in run[:-1]]
        limit = max(2 * min(gaps), 1.0)
        while True:
            chains: list[list[int]] = [[run[0]]]
            for i, gap in zip(run[1:], gaps, strict=True):
                if gap <= limit:
                    chains[-1].append(i)
                else:
                    chains.append([i])
            helpful = [chain for chain in chains if _saves_room(xs, versions, groups, rooms, chain)]
            if helpful or limit >= max(gaps):
                joins.extend(helpful or [run])
                break
            limit *= 2
    joined = list(groups)
    for chain in reversed(joins):  # from the right, so the indices still hold
        joined[chain[0] : chain[-1] + 1] = [(groups[chain[0]][0], groups[chain[-1]][1])]
    return joined


def _saves_room(
    xs: Sequence[float],
    versions: Sequence[int],
    groups: list[tuple[int, int]],
    rooms: list[float],
    chain: list[int],
) -> bool:
    first, end = groups[chain[0]][0], groups[chain[-1]][1]
    together = _room((xs[end - 1] - xs[first]) / 2, versions[first:end])
    return len(chain) > 1 and together < sum(rooms[i] for i in chain)


def _days(first: datetime, end: datetime) -> list[datetime]:
    count = max(0, (end - first).days + 1)
    return [first + timedelta(days=n) for n in range(count) if first + timedelta(days=n) <= end]


def render(board: Board) -> str:
    """The page: HTML with its styles inline and a policy that lets it load nothing else."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    environment = Environment(
        loader=PackageLoader("tf_release.faces", "templates"),
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
