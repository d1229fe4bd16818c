"""`repair`: rebuild an environment's state, a cache, from what is authoritative: the deployment
records (the log) and the manifests. `plan` only reads, so the face can show what it will write
and ask; `repair` writes exactly that, and only over the object it read."""

import json
from dataclasses import dataclass
from typing import Any

from tf_release import naming
from tf_release.errors import BadInput, LockHeld, ReleaseError
from tf_release.manifest import Manifest, images_digest
from tf_release.state import Attempt, Deployed, EnvironmentState
from tf_release.stores import Stores, probe_newest


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


def repair(stores: Stores, plan: RepairPlan) -> EnvironmentState:
    """Write the planned state, only over the object the plan read (or where there was none)."""
    if stores.states.replace(plan.environment, plan.state, plan.etag) is None:
        raise ReleaseError(
            f"the state of {plan.environment} changed while repair ran; run "
            f"`tf-release repair --env {plan.environment}` again to see it"
        )
    return plan.state
