"""The read-only views: history, show, status and diff. They read, never write, and take the
same `Stores` as the flows in release.py."""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tf_release.flows.approvals import hold as approvals_hold
from tf_release.flows.approvals import standing
from tf_release.flows.holds import OVERRIDE_MARK, frozen, promoted_since, soaked_in, soaking
from tf_release.flows.release import known_digests, source_images
from tf_release.model import naming
from tf_release.model.approval import Tally
from tf_release.model.config import Environment
from tf_release.model.errors import BadInput, BrokenState
from tf_release.model.index import reverted_by
from tf_release.model.manifest import ImageChanges, Manifest, compare_images
from tf_release.model.rules import APPROVALS, CLEAR, SOAK, Hold, format_duration, format_local
from tf_release.model.state import (
    Attempt,
    Deployed,
    DeploymentEntry,
    EnvironmentState,
    Lock,
    Override,
    Recent,
)
from tf_release.stores.bundle import (
    Stores,
    manifest_of,
    missing_state,
    probe_newest,
    released,
    used_index,
)
from tf_release.stores.parallel import in_parallel


@dataclass(frozen=True)
class Promotion:
    """What a full promotion would change, from where ("stage@v5"), and whether a release rule
    holds it now (`ruled`: the environment has rules at all)."""

    source: str
    changes: ImageChanges
    hold: Hold | None = None
    ruled: bool = False
    approvals: int = 0  # approvals its manifest will need before it deploys (the rule's N)

    def policy(self) -> dict[str, Any]:
        policy = self.hold.to_document() if self.hold else CLEAR
        return policy | ({"approvals_needed": self.approvals} if self.approvals else {})

    def needs_approval(self, environment: str) -> str | None:
        if not self.approvals or self.changes.empty:
            return None
        return (
            f"Its manifest will need {self.approvals} approval(s) by someone other than its "
            f"author before it deploys (`tf-release approve --env {environment} vN`)."
        )


def promotion(stores: Stores, environment: str, against: str | None = None) -> Promotion:
    """What a full promotion from `against` (default: the environment's promote_from label)
    would change in what the environment runs now, and whether its freeze or soak holds it."""
    env = stores.config.environment(environment)
    label = env.promote_from if against is None else stores.config.check_label(against)
    if label == environment:
        raise BadInput(f"cannot compare {environment} with itself")
    source = source_images(stores, label, [])
    running = stores.states.get(environment)[0].deployed
    # as prepare would record them
    digests, _ = known_digests(source.images, running, source, stores.config.checks)
    changes = compare_images(
        running.images if running else {},
        running.digests if running else {},
        source.images,
        digests,
    )
    soak_source, soak_running = soaked_in(stores, env, label, source.running)
    since = promoted_since(soak_running, source.images, digests, running)
    hold = frozen(stores, env) or soaking(stores, env, soak_source, since)
    return Promotion(source.name, changes, hold, env.rules.any, env.rules.approvals)


def diff_environment(
    stores: Stores, environment: str, against: str | None = None
) -> tuple[str, ImageChanges]:
    """What a full promotion would change, and where it would take the images from."""
    found = promotion(stores, environment, against)
    return found.source, found.changes


@dataclass(frozen=True)
class RuleVerdict:
    """One release rule of an environment and whether it holds at the time asked."""

    rule: str
    setting: str  # "2h from stage", "Fri 16:00 - Mon 08:00"
    hold: Hold | None
    note: str = ""  # why a rule cannot hold now (nothing to promote)

    def to_document(self) -> dict[str, Any]:
        verdict = self.hold.to_document() if self.hold else CLEAR
        detail = self.hold.detail if self.hold else self.note
        return {**verdict, "rule": self.rule, "setting": self.setting, "detail": detail}


def rules(stores: Stores, environment: str, at: datetime | None = None) -> list[RuleVerdict]:
    """Each release rule of ENV and whether it holds now (or at `at`): soak against what the
    source environment runs (at a past `at`, what ran then and since when), each freeze window
    on its own."""
    env = stores.config.environment(environment)
    now = stores.clock()
    moment = now if at is None else at
    verdicts = []
    if env.rules.soak is not None:
        source = env.promote_from
        setting = f"{format_duration(env.rules.soak)} from {source}"
        if moment < now:  # what ran then
            found = status(stores, [source, environment], moment)
            running, target = (item.deployed for item in found)
            if running is not None:
                running = _running_since(stores, source, running, moment - env.rules.soak)
        else:
            running, target = (
                stores.states.get(name)[0].deployed for name in (source, environment)
            )
        if running is None:
            verdicts.append(RuleVerdict(SOAK, setting, None, f"{source} runs nothing yet"))
        else:
            since = promoted_since(running, running.images, running.digests, target)
            note = "" if since else f"{environment} already runs what {source} runs"
            hold = env.rules.soaking(source, since, moment)
            verdicts.append(RuleVerdict(SOAK, setting, hold, note))
    for window in env.rules.freeze:
        hold = replace(env.rules, freeze=(window,)).frozen(moment)
        verdicts.append(RuleVerdict("freeze", window.text, hold))
    if env.rules.approvals:
        verdicts.append(_approvals_verdict(stores, env))
    return verdicts


def _approvals_verdict(stores: Stores, env: Environment) -> RuleVerdict:
    """The approvals rule against the newest manifest, while it waits to be deployed."""
    approvers = env.rules.approvers
    setting = f"{env.rules.approvals} by someone other than the author" + (
        f", among {', '.join(approvers)}" if approvers else ""
    )
    found = _waiting(stores, env, stores.states.get(env.name)[0])
    if found is None:
        return RuleVerdict(APPROVALS, setting, None, "no manifest waits to be deployed")
    note = f"{naming.format_version(found.version)} has {len(found.counted)} of {found.needed}"
    return RuleVerdict(APPROVALS, setting, approvals_hold(env, found), note)


def _running_since(
    stores: Stores, environment: str, deployed: Deployed, horizon: datetime
) -> Deployed:
    """`deployed`, each image with when it began to run unchanged: the environment's successful
    deploys walked back as far as `horizon` (an earlier start changes no soak's verdict), then
    carried forward one deploy at a time as a deploy carries them (`Deployed.carried_from`)."""
    ran: list[Deployed] = []  # newest first, from `deployed`'s own deploy
    carried = set(deployed.images)
    read: dict[int, Manifest | None] = {}
    for entry in stores.deployments.entries(environment, at=deployed.finished_at):
        if not carried:
            break
        if entry.outcome != "succeeded":
            continue  # what ran did not change
        if entry.version not in read:
            read[entry.version] = stores.manifests.get(environment, entry.version)
        manifest = read[entry.version]
        if manifest is None:
            break
        earlier = Deployed(
            entry.version, dict(manifest.images), entry.deployment_id, entry.finished_at, "",
            digests=dict(manifest.digests),
        )  # fmt: skip
        ran.append(earlier)
        carried = {
            n for n in carried if earlier.runs(n, deployed.images[n], deployed.digests.get(n))
        }
        if entry.finished_at < horizon:  # what is still carried ran long enough
            break
    history = None
    for earlier in reversed(ran):
        history = earlier.carried_from(history)
    found = deployed.carried_from(history)
    return replace(found, since={name: found.running_since(name) for name in deployed.images})


def describe_moment(stores: Stores, environment: str, at: datetime | None) -> str:
    """`Fri 2026-03-27 17:00 GMT`: the time asked about, in the environment's time zone."""
    zone = stores.config.environment(environment).rules.zone
    return format_local((stores.clock() if at is None else at).astimezone(zone))


def diff_versions(stores: Stores, environment: str, old: int, new: int) -> ImageChanges:
    """What deploying manifest `new` after manifest `old` changes."""
    stores.config.environment(environment)
    before, after = manifest_of(stores, environment, old), manifest_of(stores, environment, new)
    return compare_images(before.images, before.digests, after.images, after.digests)


@dataclass(frozen=True)
class HistoryEntry:
    manifest: Manifest
    deployments: tuple[DeploymentEntry, ...]
    reverted_by: int | None = None  # the rollback that took this version out of service
    # deployment id → the release rules that deploy went past
    overrides: dict[str, tuple[Override, ...]] = field(default_factory=dict)
    # what it changed from the manifest before it; None when that one is missing or unread
    changes: ImageChanges | None = None
    approvals: Tally | None = None  # show, where the environment's rules ask for approvals

    @property
    def version(self) -> int:
        return self.manifest.version

    def overrides_of(self, entry: DeploymentEntry) -> tuple[Override, ...]:
        return self.overrides.get(entry.deployment_id, ())

    def to_document(self) -> dict[str, Any]:
        return {
            **self.manifest.to_document(),
            "deployments": [
                _entry_document(entry, self.overrides_of(entry)) for entry in self.deployments
            ],
            "reverted_by": naming.format_optional_version(self.reverted_by),
            **({"approvals": self.approvals.to_document()} if self.approvals else {}),
        }


def _entry_document(entry: DeploymentEntry, overrides: tuple[Override, ...]) -> dict[str, Any]:
    return {
        "deployment_id": entry.deployment_id,
        "outcome": entry.outcome,
        "finished_at": naming.format_time(entry.finished_at),
        "overrides": [item.to_document() for item in overrides],
    }


def _overrides(
    stores: Stores, used: dict[int, list[DeploymentEntry]]
) -> dict[str, tuple[Override, ...]]:
    """The overrides of the deploys whose id says they went past a rule: only their records
    are read (overrides are rare; the listing alone answers everything else)."""
    marked = [
        e for entries in used.values() for e in entries if e.deployment_id.endswith(OVERRIDE_MARK)
    ]
    return {entry.deployment_id: stores.deployments.get(entry).overrides for entry in marked}


@dataclass(frozen=True)
class MissingManifest:
    """A version the numbering says exists but the bucket no longer holds, or holds in a form
    that cannot be used (`problem`: hand-edited, copied, not a manifest): shown, not skipped,
    so a gap in the record is seen, and the rest of the history still is."""

    version: int
    problem: str | None = None

    @property
    def missing(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        name = naming.format_version(self.version)
        return f"{name} is missing from the bucket" if self.missing else f"{self.problem}"

    def to_document(self) -> dict[str, Any]:
        version = naming.format_version(self.version)
        if self.problem is not None:
            return {"version": version, "broken": self.problem}
        return {"version": version, "missing": True}


def history(
    stores: Stores, environment: str, limit: int = 20
) -> list[HistoryEntry | MissingManifest]:
    """The newest manifests, newest first, each with the deployments that used it and what it
    changed (the manifest before the oldest shown is read for its changes)."""
    stores.config.environment(environment)
    if limit < 1:
        raise BadInput(f"--limit must be at least 1, not {limit}")
    state = stores.states.get(environment)[0]
    newest = probe_newest(stores, environment, state)
    versions = range(newest, max(0, newest - limit), -1)
    before_oldest = [versions[-1] - 1] if versions and versions[-1] > 1 else []
    read = _read_all(stores, environment, [*versions, *before_oldest], keep_broken=True)
    found = read[: len(versions)]
    manifests = [m for m in found if isinstance(m, Manifest)]
    used = _deployments_since(stores, environment, manifests)
    reverted = _reverted(manifests, used)
    overrides = _overrides(stores, used)
    changes = _changes([m for m in read if isinstance(m, Manifest)])
    pending = awaiting(stores, environment, state) if state.latest_version == newest else None
    return [
        manifest
        if isinstance(manifest, MissingManifest)
        else MissingManifest(version)
        if manifest is None
        else HistoryEntry(
            manifest,
            tuple(used.get(version, ())),
            reverted.get(version),
            overrides,
            changes.get(version),
            pending if pending is not None and pending.version == version else None,
        )
        for version, manifest in zip(versions, found, strict=True)
    ]


def _changes(manifests: list[Manifest]) -> dict[int, ImageChanges]:
    """Version → what it changed from the version before it (a moved tag's digest counts); a
    first manifest adds all it holds. One whose predecessor is missing is left out: unknown."""
    by_version = {manifest.version: manifest for manifest in manifests}
    changes = {}
    for after in manifests:
        before = by_version.get(after.version - 1)
        if before is None and after.version != 1:
            continue
        changes[after.version] = compare_images(
            before.images if before else {},
            before.digests if before else {},
            after.images,
            after.digests,
        )
    return changes


def show(stores: Stores, environment: str, version: int) -> HistoryEntry:
    """One manifest with its deployments, and the rollback that reverted it, if one did: from
    the version's index, else from the record (every later deployment, and the manifests that
    were deployed after it)."""
    env = stores.config.environment(environment)
    manifest = manifest_of(stores, environment, version)
    approvals = standing(stores, env, manifest)  # no request where no rule asks for them
    use = used_index(stores, environment, manifest)
    if use is not None:
        mine = {version: list(use.deployments)}
        reverted = use.reverted_by
    else:
        used = _deployments_since(stores, environment, [manifest], every_version=True)
        later = _read_all(stores, environment, sorted(v for v in used if v > version))
        reverted = _reverted([m for m in later if m is not None], used).get(version)
        mine = {version: used.get(version, [])}
    return HistoryEntry(
        manifest, tuple(mine[version]), reverted, _overrides(stores, mine), approvals=approvals
    )


def _read_all(
    stores: Stores, environment: str, versions: Iterable[int], keep_broken: bool = False
) -> list[Any]:
    """The manifests, None for those missing; with `keep_broken`, one that cannot be used is a
    MissingManifest naming why (else its error stops the view)."""

    def read(version: int) -> Manifest | MissingManifest | None:
        try:
            return stores.manifests.get(environment, version)
        except BadInput as error:
            if not keep_broken:
                raise
            return MissingManifest(version, str(error))

    return in_parallel(read, versions)


def _reverted(manifests: list[Manifest], used: dict[int, list[DeploymentEntry]]) -> dict[int, int]:
    """Version → the rollback that reverted it (index.reverted_by), among these manifests."""

    def succeeded(version: int) -> list[datetime]:
        return [e.finished_at for e in used.get(version, ()) if e.outcome == "succeeded"]

    rollbacks: dict[int, list[tuple[int, datetime]]] = {}
    for m in manifests:
        if m.reverts is not None:
            rollbacks.setdefault(m.reverts, []).extend((m.version, t) for t in succeeded(m.version))
    found = {version: reverted_by(succeeded(version), done) for version, done in rollbacks.items()}
    return {version: by for version, by in found.items() if by is not None}


def _deployments_since(
    stores: Stores, environment: str, manifests: list[Manifest], every_version: bool = False
) -> dict[int, list[DeploymentEntry]]:
    """Deployments of these manifests (or of every version, with `every_version`) since the
    oldest was written; none can predate it, so the listing stops there."""
    if not manifests:
        return {}
    oldest = min(manifest.created_at for manifest in manifests)
    wanted = {manifest.version for manifest in manifests}
    used: dict[int, list[DeploymentEntry]] = {}
    for entry in stores.deployments.entries(environment):
        if entry.finished_at < oldest:
            break
        if every_version or entry.version in wanted:
            used.setdefault(entry.version, []).append(entry)
    return used


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str
    deployed: Deployed | None
    latest_version: int
    lock: Lock | None = None
    at: datetime | None = None
    last_attempt: Attempt | None = None
    problem: str | None = None  # the state cannot be used: what is wrong, and the fix
    recent: tuple[Recent, ...] = ()  # the newest deployments, as the state remembers them
    awaiting: Tally | None = None  # the newest manifest, not yet deployed, short of approvals

    def describe_awaiting(self) -> str | None:
        if self.awaiting is None:
            return None
        version = naming.format_version(self.awaiting.version)
        return (
            f"{version} awaits approval ({len(self.awaiting.counted)} of "
            f"{self.awaiting.needed}): `tf-release approve --env {self.environment} {version}`"
        )

    def describe_lock(self) -> str | None:
        if self.lock is None:
            return None
        note = self.lock.partly_applied(self.environment)
        return (
            f"a deploy is in progress or was abandoned: {self.lock.describe()}; if it is not "
            f"running, clear it with `tf-release unlock --env {self.environment}`"
        ) + (f"; {note}" if note else "")

    def to_document(self) -> dict[str, Any]:
        if self.problem is not None:
            return {"environment": self.environment, "error": self.problem}
        deployed = self.deployed
        return {
            "environment": self.environment,
            "at": naming.format_time(self.at) if self.at else None,
            "version": naming.format_version(deployed.version) if deployed else None,
            "deployed_at": naming.format_time(deployed.finished_at) if deployed else None,
            "deployed_by": deployed.by if deployed else None,
            "deployment_id": deployed.deployment_id if deployed else None,
            "images": dict(deployed.images) if deployed else {},
            "latest_version": naming.format_optional_version(self.latest_version or None),
            "lock": None
            if self.lock is None
            else {**self.lock.to_document(), "explanation": self.describe_lock()},
            "last_attempt": None if self.last_attempt is None else self.last_attempt.to_document(),
            "overrides": [item.to_document() for item in deployed.overrides] if deployed else [],
            "awaiting_approval": None
            if self.awaiting is None
            else {"version": naming.format_version(self.awaiting.version)}
            | self.awaiting.to_document(),
        }


def status(
    stores: Stores, environments: Iterable[str] | None = None, at: datetime | None = None
) -> list[EnvironmentStatus]:
    """Which version each environment runs now, or ran at `at`, and how its newest deploy went.
    An environment whose state cannot be used says so; the others are still shown."""
    names = list(dict.fromkeys(environments or stores.config.environments))  # once each, in order
    for name in names:
        stores.config.environment(name)
    if at is not None:
        return [_status_at(stores, name, at) for name in names]
    return [_status_now(stores, name) for name in names]


def _status_now(stores: Stores, environment: str) -> EnvironmentStatus:
    """The state says it all: what runs, the lock, and how the newest deploy ended when it did
    not succeed. Only a missing state is looked into further (were there ever releases?)."""
    try:
        state, etag = stores.states.get(environment)
    except BrokenState as error:
        return EnvironmentStatus(environment, None, 0, problem=str(error))
    if state.lock is not None:
        return EnvironmentStatus(
            environment,
            state.deployed,
            state.latest_version,
            state.lock,
            last_attempt=Attempt.running(state.lock),
            recent=state.recent,
        )
    if etag is None and released(stores, environment, stores.deployments.newest(environment)):
        return EnvironmentStatus(environment, None, 0, problem=missing_state(stores, environment))
    return EnvironmentStatus(
        environment,
        state.deployed,
        state.latest_version,
        last_attempt=state.last_attempt,
        recent=state.recent,
        awaiting=awaiting(stores, environment, state),
    )


def awaiting(stores: Stores, environment: str, state: EnvironmentState) -> Tally | None:
    """The newest manifest's approvals, when the approvals rule still holds it back."""
    found = _waiting(stores, stores.config.environment(environment), state)
    return found if found is not None and found.held else None


def _waiting(stores: Stores, env: Environment, state: EnvironmentState) -> Tally | None:
    """How the newest manifest stands against the approvals rule, when it is newer than what
    runs and no rollback (rollbacks are never held); read only for an environment with it."""
    running = state.deployed.version if state.deployed else 0
    if not env.rules.approvals or state.latest_version <= running:
        return None
    newest = stores.manifests.get(env.name, state.latest_version)
    if newest is None or newest.reverts is not None:
        return None
    return standing(stores, env, newest)


def state_problem(stores: Stores, environment: str) -> str | None:
    """What stops the environment's state being used, with the fix; None when it can be.
    One read when the state is there; a missing one is looked into further."""
    try:
        _, etag = stores.states.get(environment)
    except BrokenState as error:
        return str(error)
    if etag is None and released(stores, environment, stores.deployments.newest(environment)):
        return missing_state(stores, environment)
    return None


def _status_at(stores: Stores, environment: str, at: datetime) -> EnvironmentStatus:
    attempt = None
    for index, entry in enumerate(stores.deployments.entries(environment, at=at)):
        if entry.outcome != "succeeded":
            if index == 0:
                attempt = Attempt.ended(stores.deployments.get(entry))
            continue
        record = stores.deployments.get(entry)
        manifest = manifest_of(stores, environment, record.version)
        deployed = Deployed(
            record.version,
            manifest.images,
            record.deployment_id,
            record.finished_at,
            record.started_by,
            digests=dict(manifest.digests),
            overrides=record.overrides,
        )
        return EnvironmentStatus(environment, deployed, 0, at=at, last_attempt=attempt)
    return EnvironmentStatus(environment, None, 0, at=at, last_attempt=attempt)
