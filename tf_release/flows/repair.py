"""`repair`: rebuild an environment's state, a cache, from what is authoritative: the deployment
records (the log) and the manifests. `plan` only reads, so the face can show what it will write
and ask; `repair` writes exactly that, and only over the object it read. `rebuild_indexes`
rewrites the indexes beside the record (index.py) from it."""

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tf_release.model import naming
from tf_release.model.errors import BadInput, LockHeld, ReleaseError
from tf_release.model.index import EPOCH, ONE_MS, DeploymentPeriod, VersionUse, period_start
from tf_release.model.manifest import Manifest, images_digest
from tf_release.model.state import Attempt, Deployed, EnvironmentState, Recent
from tf_release.stores.bundle import Stores, probe_newest
from tf_release.stores.parallel import in_parallel


@dataclass(frozen=True)
class RepairPlan:
    environment: str
    etag: str | None  # of the stored object to replace; None: there is none
    current: EnvironmentState | None  # the stored state, when there is one and it parses
    problem: str | None  # what is wrong with the stored state (None: nothing)
    state: EnvironmentState  # what repair writes

    @property
    def needed(self) -> bool:
        return self.problem is not None

    def describe(self) -> str:
        """`latest v3; deployed v2 by … at …, 4 image(s); no lock`: what repair writes."""
        state = self.state
        latest = naming.format_version(state.latest_version) if state.latest_version else "none"
        deployed = state.deployed
        running = (
            "nothing deployed"
            if deployed is None
            else f"deployed {naming.format_version(deployed.version)} by {deployed.by} at "
            f"{naming.format_time(deployed.finished_at)}, {len(deployed.images)} image(s)"
        )
        return f"latest {latest}; {running}; no lock"

    def to_document(self, repaired: bool) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "problem": self.problem,
            "repaired": repaired,
            "state": json.loads(self.state.to_json()),
        }


def plan(stores: Stores, environment: str) -> RepairPlan:
    """What the records say the state should be, beside what is stored. A readable state that
    holds a lock is left to `unlock`: that deploy may still be running."""
    stores.config.environment(environment)
    stored = stores.states.inspect(environment)
    if stored.state is not None and stored.state.lock is not None:
        raise LockHeld(
            f"{environment} is locked: {stored.state.lock.describe()}. repair leaves a deploy's "
            f"lock alone; if none is running, clear it with `tf-release unlock --env {environment}`"
        )
    rebuilt = rebuild(stores, environment)
    where = stores.states.where(environment)
    if stored.state is None:
        problem = stored.problem
    elif stored.etag is None:
        problem = None if rebuilt == EnvironmentState() else f"{where} is missing"
    elif stored.state != rebuilt:
        problem = f"{where} does not match the deployment records and manifests"
    else:
        problem = None
    current = stored.state if stored.etag is not None else None
    return RepairPlan(environment, stored.etag, current, problem, rebuilt)


def rebuild(stores: Stores, environment: str) -> EnvironmentState:
    """The newest successful deploy (its record and manifest) and the newest manifest; no lock."""
    deployed = None
    attempt = None
    seen = 0
    for index, entry in enumerate(stores.deployments.entries(environment)):
        seen = max(seen, entry.version)
        if index == 0 and entry.outcome != "succeeded":
            attempt = Attempt.ended(stores.deployments.get(entry))
        if entry.outcome == "succeeded":
            record = stores.deployments.get(entry)
            manifest = _manifest(stores, environment, record.version)
            if manifest is None:
                name = naming.format_version(record.version)
                raise BadInput(
                    f"cannot rebuild the state of {environment}: manifest {name}, which it "
                    "runs, is missing from the bucket"
                )
            deployed = Deployed(
                record.version,
                dict(manifest.images),
                record.deployment_id,
                record.finished_at,
                record.started_by,
                digests=dict(manifest.digests),
                pinned=stores.config.environment(environment).pin_digests
                and bool(manifest.digests),
                overrides=record.overrides,
            )
            break
    latest = probe_newest(stores, environment, EnvironmentState(latest_version=seen))
    newest = None
    if deployed is not None and deployed.version == latest:
        newest = (deployed.images, deployed.digests)
    elif latest and (found := _manifest(stores, environment, latest)) is not None:
        newest = (found.images, found.digests)
    digest = None if newest is None else images_digest(*newest)
    return EnvironmentState(
        latest_version=latest, deployed=deployed, latest_images=digest, last_attempt=attempt
    )


def _manifest(stores: Stores, environment: str, version: int) -> Manifest | None:
    """A manifest repair needs; one that cannot be used (copied under another number, edited by
    hand) stops it, naming the object and the way past it."""
    try:
        return stores.manifests.get(environment, version)
    except BadInput as error:
        key = naming.manifest_key(stores.config.project, environment, version)
        where = f"s3://{stores.config.bucket}/{key}"
        raise BadInput(
            f"cannot rebuild the state of {environment}: {error}; if that object is a stray "
            f"copy, move it out of the way (`aws s3 mv {where} {where}.stray`) and run "
            f"`tf-release repair --env {environment}` again"
        ) from None


@dataclass(frozen=True)
class Indexes:
    """What `rebuild_indexes` wrote: the version indexes and period indexes, by count."""

    versions: int
    periods: int

    def to_document(self) -> dict[str, int]:
        return {"versions": self.versions, "periods": self.periods}


def rebuild_indexes(stores: Stores, environment: str) -> Indexes:
    """Rewrite the environment's indexes (index.py) from the record: every deployment record and
    every manifest is read, once. The state is read before and after: a deploy that ended
    meanwhile may have been written over, and repair then says to run it again."""
    stores.config.environment(environment)
    state, before = stores.states.get(environment)
    if state.lock is not None:
        raise LockHeld(f"{environment} is locked: {state.lock.describe()}; repair it once free")
    entries = list(stores.deployments.entries(environment))
    seen = max([state.latest_version, *(entry.version for entry in entries)])
    newest = probe_newest(stores, environment, replace(state, latest_version=seen))
    versions = range(1, newest + 1)
    read = in_parallel(_usable(stores, environment), versions)
    manifests = {v: m for v, m in zip(versions, read, strict=True) if m is not None}
    records = in_parallel(stores.deployments.get, entries)
    project = stores.config.project
    uses = {
        version: VersionUse(project, environment, version, manifest.created_at)
        for version, manifest in manifests.items()
    }
    for entry in reversed(entries):  # oldest first: each goes to the front
        if entry.version in uses:
            uses[entry.version] = uses[entry.version].with_deployment(entry)
        reverts = manifests[entry.version].reverts if entry.version in manifests else None
        if entry.outcome == "succeeded" and reverts in uses:
            uses[reverts] = uses[reverts].with_rollback(entry.version, entry.finished_at)
    periods: dict[datetime, list[Recent]] = {}
    for record in records:
        manifest = manifests.get(record.version)
        item = Recent.of(record, manifest.reason if manifest else None)
        periods.setdefault(period_start(record.finished_at), []).append(item)
    rebuilt, ran_before = [], EPOCH  # complete back to the newest deployment before each
    for starts in sorted(periods):
        items = sorted(periods[starts], key=lambda item: item.finished_at, reverse=True)
        rebuilt.append(DeploymentPeriod(project, environment, starts, ran_before, tuple(items)))
        ran_before = items[0].finished_at + ONE_MS
    written: list[VersionUse | DeploymentPeriod] = [*uses.values(), *rebuilt]
    in_parallel(lambda index: stores.index.overwrite(environment, index), written)
    if stores.states.get(environment)[1] != before:
        raise ReleaseError(
            f"a deploy of {environment} ended while repair rebuilt its indexes; run "
            f"`tf-release repair --env {environment}` again"
        )
    return Indexes(len(uses), len(periods))


def _usable(stores: Stores, environment: str) -> Callable[[int], Manifest | None]:
    """A manifest for the index, or None when it is missing or cannot be used (no index)."""

    def read(version: int) -> Manifest | None:
        try:
            return stores.manifests.get(environment, version)
        except BadInput:
            return None

    return read


def repair(stores: Stores, plan: RepairPlan) -> EnvironmentState:
    """Write the planned state, only over the object the plan read (or where there was none)."""
    if stores.states.replace(plan.environment, plan.state, plan.etag) is None:
        raise ReleaseError(
            f"the state of {plan.environment} changed while repair ran; run "
            f"`tf-release repair --env {plan.environment}` again to see it"
        )
    return plan.state
