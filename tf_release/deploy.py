"""The deploy transaction: lock → SSM → Terraform → record → unlock, and `unlock` for a run
that died. release.py's apply and rollback call down into it."""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tf_release.config import Environment
from tf_release.errors import AwsFailure, Cancelled, ImagesMissing, LockHeld, ReleaseError
from tf_release.manifest import ImageChanges, Manifest, diff_images
from tf_release.ssm import ReleasePointer
from tf_release.state import Deployed, Deployment, EnvironmentState, Lock
from tf_release.stores import Stores, manifest_of, newest_version
from tf_release.terraform import PlanSummary

LOCK_POLL_SECONDS = 2.0


class TerraformRun(Protocol):
    """The Terraform run of one environment: a saved plan, then exactly that plan applied."""

    def plan(self) -> PlanSummary: ...

    def apply(self) -> None: ...


@dataclass(frozen=True)
class DeployPlan:
    """What a deploy is about to do; shown to the operator before they confirm."""

    environment: str
    manifest: Manifest
    changes: ImageChanges
    terraform: PlanSummary | None = None


Confirm = Callable[[DeployPlan], bool]


def _always(plan: DeployPlan) -> bool:
    return True


@dataclass(frozen=True)
class DeployResult:
    deployment: Deployment | None  # None with plan_only: nothing was deployed
    plan: DeployPlan

    def to_document(self) -> dict[str, Any]:
        return {
            "environment": self.plan.environment,
            "version": self.plan.manifest.name,
            "outcome": self.deployment.outcome if self.deployment else "planned",
            "deployment": self.deployment.to_document() if self.deployment else None,
            "changes": self.plan.changes.to_document(),
            "terraform": self.plan.terraform.to_document() if self.plan.terraform else None,
        }


@dataclass(frozen=True)
class DeployOptions:
    """How a deploy runs: the environment's Terraform (None: SSM only), who confirms, how long
    to wait for another deploy, whether to stop after the plan, and whether to check that the
    images still exist in ECR."""

    terraform: TerraformRun | None = None
    confirm: Confirm = _always
    lock_timeout: float = 0
    plan_only: bool = False
    check_images: bool = True


def deploy(
    stores: Stores,
    environment: str,
    version: int | None = None,
    options: DeployOptions = DeployOptions(),
) -> DeployResult:
    """Deploy a manifest (default: the newest) to its environment."""
    env = stores.config.environment(environment)
    current = stores.states.get(environment)
    number = version if version is not None else newest_version(stores, environment, current[0])
    manifest = manifest_of(stores, environment, number)
    return deploy_manifest(stores, env, manifest, current, options)


def check_images_exist(stores: Stores, state: EnvironmentState, images: dict[str, str]) -> None:
    """The images a deploy brings in must still exist; those already running are not asked."""
    running = set(state.deployed_images.values())
    new = [url for url in images.values() if url not in running]
    with stores.progress.step(f"checking that {len(new)} new image(s) exist"):
        missing = stores.registry.missing(new)
    if missing:
        raise ImagesMissing(
            f"{len(missing)} image(s) no longer exist in ECR: {', '.join(missing)} "
            "(pass --skip-image-check to deploy anyway)"
        )


def deploy_manifest(
    stores: Stores,
    env: Environment,
    manifest: Manifest,
    current: tuple[EnvironmentState, str | None],
    options: DeployOptions,
) -> DeployResult:
    if options.check_images:
        check_images_exist(stores, current[0], manifest.images)
    terraform, confirm, plan_only = options.terraform, options.confirm, options.plan_only
    started_at = stores.clock()
    lock = Lock(
        deployment_id=f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}",
        version=manifest.version,
        holder=stores.caller,
        host=stores.host,
        started_at=started_at,
    )
    locked = _acquire_lock(stores, env.name, lock, current, options.lock_timeout)
    state = locked[0]
    previous_version = state.deployed.version if state.deployed else None
    with stores.progress.step(f"reading the parameters of {env.name}"):
        before = stores.images.read_named(env.name, manifest.images.keys() | state.deployed_images)
    plan = DeployPlan(env.name, manifest, diff_images(before, manifest.images))
    written = False
    try:
        if terraform is None:
            if plan_only:
                return _finish_plan_only(stores, lock, plan, locked)
            if not confirm(plan):
                raise Cancelled("deploy declined; nothing was changed")
        written = True  # from the first write on, a failure puts SSM back
        with stores.progress.step(f"writing {plan.changes.count} SSM parameter(s) of {env.name}"):
            stores.images.replace(env.name, before, manifest.images)
            stores.images.write_pointer(
                env.name, ReleasePointer(manifest.version, len(manifest.images))
            )
        if terraform is not None:
            with stores.progress.step(f"terraform plan ({env.name})"):
                plan = replace(plan, terraform=terraform.plan())
            if plan_only:
                _put_back(stores, env.name, before, previous_version)
                return _finish_plan_only(stores, lock, plan, locked)
            if not confirm(plan):
                raise Cancelled("plan declined; SSM was put back as it was")
            with stores.progress.step(f"terraform apply ({env.name})"):
                terraform.apply()
    except (ReleaseError, KeyboardInterrupt) as error:
        failure = error if isinstance(error, ReleaseError) else Cancelled("interrupted", 130)
        if written:
            try:
                _put_back(stores, env.name, before, previous_version)
            except ReleaseError as restore_error:
                raise AwsFailure(
                    f"{failure}; then SSM could not be put back ({restore_error}). The lock "
                    f"stays: once AWS answers, run `tf-release unlock --env {env.name}`"
                ) from None
        outcome = "cancelled" if isinstance(failure, Cancelled) else "failed"
        _finish(stores, env.name, lock, outcome, previous_version, str(failure), locked)
        if failure is error:
            raise
        raise failure from None
    deployment = _finish(
        stores, env.name, lock, "succeeded", previous_version, "", locked, manifest.images
    )
    return DeployResult(deployment, plan)


def _acquire_lock(
    stores: Stores,
    environment: str,
    lock: Lock,
    current: tuple[EnvironmentState, str | None] | None,
    timeout: float,
) -> tuple[EnvironmentState, str]:
    def take(state: EnvironmentState) -> EnvironmentState:
        check_unlocked(state, environment)
        return replace(state, lock=lock)

    deadline = time.monotonic() + timeout
    while True:
        try:
            return stores.states.update(environment, take, current=current)
        except LockHeld:
            if time.monotonic() >= deadline:
                raise
            current = None
            with stores.progress.step(f"waiting for the lock of {environment}"):
                time.sleep(min(LOCK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def check_unlocked(state: EnvironmentState, environment: str) -> None:
    """Fail fast, naming the holder, before a flow writes anything."""
    if state.lock is not None:
        raise LockHeld(
            f"{environment} is locked: {state.lock.describe()}. Another deploy is in "
            "progress; if none is running, clear it with "
            f"`tf-release unlock --env {environment}`"
        )


def _release_lock(
    stores: Stores,
    environment: str,
    lock: Lock,
    deployed: Deployed | None,
    current: tuple[EnvironmentState, str | None] | None = None,
) -> None:
    def release(state: EnvironmentState) -> EnvironmentState:
        ours = state.lock is not None and state.lock.deployment_id == lock.deployment_id
        return replace(
            state,
            lock=None if ours else state.lock,
            deployed=deployed if deployed is not None else state.deployed,
        )

    stores.states.update(environment, release, current=current)


def _put_back(
    stores: Stores, environment: str, images: dict[str, str], version: int | None
) -> None:
    """Make SSM hold these images again, so no later Terraform run picks up undeployed ones.

    SSM is read first: after a failure part-way, only what was really changed is written back.
    """
    with stores.progress.step(f"putting the SSM parameters of {environment} back"):
        stores.images.replace(environment, stores.images.read(environment), images)
        pointer = None if version is None else ReleasePointer(version, len(images))
        stores.images.write_pointer(environment, pointer)


def _finish_plan_only(
    stores: Stores, lock: Lock, plan: DeployPlan, locked: tuple[EnvironmentState, str]
) -> DeployResult:
    _release_lock(stores, plan.environment, lock, None, current=locked)
    return DeployResult(None, plan)


def _finish(
    stores: Stores,
    environment: str,
    lock: Lock,
    outcome: str,
    previous_version: int | None,
    message: str,
    locked: tuple[EnvironmentState, str],
    images: dict[str, str] | None = None,
) -> Deployment:
    """Record how the deploy ended, then release the lock (and, on success, mark it deployed)."""
    finished_at = stores.clock()
    deployment = Deployment(
        project=stores.config.project,
        environment=environment,
        deployment_id=lock.deployment_id,
        version=lock.version,
        outcome=outcome,
        started_at=lock.started_at,
        finished_at=finished_at,
        started_by=lock.holder,
        host=lock.host,
        previous_version=previous_version,
        message=message,
    )
    stores.deployments.record(deployment)
    deployed = None
    if outcome == "succeeded" and images is not None:
        deployed = Deployed(lock.version, images, lock.deployment_id, finished_at, lock.holder)
    _release_lock(stores, environment, lock, deployed, current=locked)
    return deployment


def current_lock(stores: Stores, environment: str) -> Lock | None:
    """Who holds the environment's deploy lock, if anyone (shown before `unlock` asks)."""
    stores.config.environment(environment)
    return stores.states.get(environment)[0].lock


def unlock(stores: Stores, environment: str) -> Lock | None:
    """Clear a lock left by a run that died: SSM goes back to the deployed images, and the
    abandoned deploy is recorded with who cleared it. Returns the lock cleared, if any."""
    stores.config.environment(environment)
    state, _ = stores.states.get(environment)
    lock = state.lock
    if lock is None:
        return None
    deployed_images = state.deployed_images
    deployed_version = state.deployed.version if state.deployed else None
    _put_back(stores, environment, deployed_images, deployed_version)
    abandoned = Deployment(
        project=stores.config.project,
        environment=environment,
        deployment_id=lock.deployment_id,
        version=lock.version,
        outcome="abandoned",
        started_at=lock.started_at,
        finished_at=stores.clock(),
        started_by=lock.holder,
        host=lock.host,
        previous_version=deployed_version,
        message=f"lock cleared by {stores.caller}",
        cleared_by=stores.caller,
    )
    stores.deployments.record(abandoned)
    _release_lock(stores, environment, lock, None)
    return lock
