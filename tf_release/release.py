"""The release flows: publish, prepare, deploy, apply, rollback and unlock (views.py reads).

Plain functions over a `Stores` bundle, usable without the CLI. Every check of the request runs
before the first write, so bad input never leaves anything behind.
"""

import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Protocol

from tf_release import naming
from tf_release.aws import AwsSession
from tf_release.config import Config, Environment
from tf_release.ecr import ImageRegistry
from tf_release.errors import (
    AwsFailure,
    BadInput,
    Cancelled,
    ImagesMissing,
    LockHeld,
    ReleaseError,
)
from tf_release.manifest import ImageChanges, Manifest, diff_images
from tf_release.progress import Progress, Quiet
from tf_release.s3 import DeploymentLog, ManifestStore, StateStore
from tf_release.ssm import ImageStore, ReleasePointer
from tf_release.state import Deployed, Deployment, EnvironmentState, Lock
from tf_release.terraform import PlanSummary

LOCK_POLL_SECONDS = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Stores:
    """Everything a flow needs for one project: its config, the stores, and who is acting."""

    config: Config
    images: ImageStore
    manifests: ManifestStore
    states: StateStore
    deployments: DeploymentLog
    registry: ImageRegistry
    identify: Callable[[], str]
    session: AwsSession | None = None
    clock: Callable[[], datetime] = utc_now
    host: str = field(default_factory=socket.gethostname)
    progress: Progress = field(default_factory=Quiet)  # the CLI shows a spinner on a terminal

    @cached_property
    def caller(self) -> str:
        return self.identify()


def open_stores(
    config: Config,
    profile: str | None = None,
    region: str | None = None,
    progress: Progress | None = None,
) -> Stores:
    """The stores of a project on the caller's session (standard credential chain).

    An environment with a `role_arn` keeps its image pointers in that role's account: its SSM
    parameters go through the assumed role. The bucket, ECR and the caller's identity stay on
    the caller's own session, so records name the person, not the role.
    """
    session = AwsSession(profile=profile, region=region or config.region)
    roles = {
        name: session.assume(env.role_arn)
        for name, env in config.environments.items()
        if env.role_arn
    }
    return Stores(
        config=config,
        images=ImageStore(session, config.project, roles),
        manifests=ManifestStore(session, config.bucket, config.project),
        states=StateStore(session, config.bucket, config.project),
        deployments=DeploymentLog(session, config.bucket, config.project),
        registry=ImageRegistry(session),
        identify=session.caller_arn,
        session=session,
        progress=progress or Quiet(),
    )


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
class Prepared:
    environment: str
    manifest: Manifest | None  # None: the environment already runs exactly these images
    changes: ImageChanges
    deployed_version: int | None

    def to_document(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "created": self.manifest is not None,
            "version": self.manifest.name if self.manifest else None,
            "deployed_version": naming.format_optional_version(self.deployed_version),
            "changes": self.changes.to_document(),
            "manifest": self.manifest.to_document() if self.manifest else None,
        }


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


# Step 1: build → artefact


def publish(
    stores: Stores, image: str, url: str, label: str = naming.LATEST, check_image: bool = True
) -> str:
    """Point `/{project}/image_ids/{label}/{image}` at a freshly pushed image (checked in ECR,
    so that a typo in a tag never becomes a release)."""
    stores.config.check_image(image)
    naming.check_image_url(url)
    stores.config.check_label(label)
    if check_image and stores.registry.missing([url]):
        raise ImagesMissing(
            f"{url} does not exist in ECR: push it first (or pass --skip-image-check)"
        )
    stores.images.put(label, image, url)
    return naming.image_parameter(stores.config.project, label, image)


# Step 2: artefacts → release manifest


def prepare(
    stores: Stores,
    environment: str,
    reason: str,
    images: Iterable[str] = (),
    source: str | None = None,
    force: bool = False,
) -> Prepared:
    """Create the next manifest from the source label; with `images`, take only those."""
    env = stores.config.environment(environment)
    reason = naming.check_reason(reason)
    selected = [stores.config.check_image(name) for name in images]
    label = env.promote_from if source is None else stores.config.check_label(source)
    if label == environment:
        raise BadInput(f"cannot prepare {environment} from its own images")

    with stores.progress.step(f"preparing {environment} from {label}"):
        available = source_images(stores, label, selected)
        current = stores.states.get(environment)
        state = current[0]
        deployed = state.deployed_images
        wanted = (
            {**deployed, **{name: available[name] for name in selected}} if selected else available
        )
        changes = diff_images(deployed, wanted)
        deployed_version = state.deployed.version if state.deployed else None
        if changes.empty and not force:
            return Prepared(environment, None, changes, deployed_version)
        manifest = _create_manifest(stores, environment, wanted, reason, label, current)
    return Prepared(environment, manifest, changes, deployed_version)


def source_images(stores: Stores, label: str, selected: list[str]) -> dict[str, str]:
    """The images a manifest can take from a label: the selected ones, or all (allow-listed)."""
    # Known names are read ten a request; otherwise by path (one more request after a full page)
    if selected or stores.config.images is not None:
        available = stores.images.read_named(label, selected or stores.config.images or ())
    else:
        available = stores.images.read(label)
    path = naming.image_path(stores.config.project, label)
    missing = [name for name in selected if name not in available]
    if missing:
        raise BadInput(f"no image {', '.join(missing)} under {path}: publish it first")
    if not available:
        raise BadInput(f"no images under {path}: publish some first")
    return available


def _create_manifest(
    stores: Stores,
    environment: str,
    images: dict[str, str],
    reason: str,
    source: str,
    current: tuple[EnvironmentState, str | None],
) -> Manifest:
    created_by = stores.caller
    created_at = stores.clock()

    def build(version: int) -> Manifest:
        return Manifest(
            project=stores.config.project,
            environment=environment,
            version=version,
            images=images,
            reason=reason,
            created_at=created_at,
            created_by=created_by,
            source=source,
        )

    manifest = stores.manifests.create_next(build, after=current[0].latest_version)
    stores.states.update(environment, lambda s: s.with_latest(manifest.version), current=current)
    return manifest


# Step 3: manifest → deployment


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
    number = version if version is not None else _newest_version(stores, environment, current[0])
    manifest = manifest_of(stores, environment, number)
    return _deploy_manifest(stores, env, manifest, current, options)


def apply(
    stores: Stores,
    environment: str,
    reason: str,
    images: Iterable[str] = (),
    force: bool = False,
    options: DeployOptions = DeployOptions(),
) -> tuple[Prepared, DeployResult | None]:
    """Prepare and deploy in one step; nothing is deployed when nothing would change."""
    env = stores.config.environment(environment)
    _check_unlocked(stores.states.get(environment)[0], environment)
    prepared = prepare(stores, environment, reason, images, force=force)
    if prepared.manifest is None:
        return prepared, None
    current = stores.states.get(environment)
    return prepared, _deploy_manifest(stores, env, prepared.manifest, current, options)


def rollback(
    stores: Stores,
    environment: str,
    reason: str,
    to: int | None = None,
    options: DeployOptions = DeployOptions(),
) -> tuple[Manifest, DeployResult]:
    """Write an old manifest again under a new version, and deploy that.

    Its images are checked before the new manifest is written: images that ECR has expired
    stop the rollback before anything changes.
    """
    env = stores.config.environment(environment)
    reason = naming.check_reason(reason)
    current = stores.states.get(environment)
    _check_unlocked(current[0], environment)
    target = to if to is not None else _previous_good_version(stores, environment, current[0])
    old = manifest_of(stores, environment, target)
    if options.check_images:
        _check_images_exist(stores, current[0], old.images)
    manifest = _create_manifest(stores, environment, old.images, reason, old.name, current)
    result = _deploy_manifest(
        stores,
        env,
        manifest,
        stores.states.get(environment),
        replace(options, check_images=False),
    )
    return manifest, result


def _check_images_exist(stores: Stores, state: EnvironmentState, images: dict[str, str]) -> None:
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


def manifest_of(stores: Stores, environment: str, version: int) -> Manifest:
    manifest = stores.manifests.get(environment, version)
    if manifest is None:
        raise BadInput(f"{environment} has no manifest {naming.format_version(version)}")
    return manifest


def probe_newest(stores: Stores, environment: str, state: EnvironmentState) -> int:
    """The state's newest version (0: none), checked forward in case a run died before
    updating it."""
    newest = state.latest_version
    while stores.manifests.exists_version(environment, newest + 1):
        newest += 1
    return newest


def _newest_version(stores: Stores, environment: str, state: EnvironmentState) -> int:
    newest = probe_newest(stores, environment, state)
    if newest == 0:
        raise BadInput(f"{environment} has no manifests yet: run `tf-release prepare` first")
    return newest


def _previous_good_version(stores: Stores, environment: str, state: EnvironmentState) -> int:
    current = state.deployed.version if state.deployed else None
    for entry in stores.deployments.entries(environment):
        if entry.outcome == "succeeded" and entry.version != current:
            return entry.version
    raise BadInput(
        f"{environment} has no successful deployment before the current one: name one with --to"
    )


def _deploy_manifest(
    stores: Stores,
    env: Environment,
    manifest: Manifest,
    current: tuple[EnvironmentState, str | None],
    options: DeployOptions,
) -> DeployResult:
    if options.check_images:
        _check_images_exist(stores, current[0], manifest.images)
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
        _check_unlocked(state, environment)
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


def _check_unlocked(state: EnvironmentState, environment: str) -> None:
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
