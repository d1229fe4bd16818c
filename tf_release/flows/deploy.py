"""The deploy transaction: lock → SSM → Terraform → record → unlock, and `unlock` for a run
that died. release.py's apply and rollback call down into it.

The lock names its process; before `terraform apply` and before the record the deploy checks the
lock is still its own, so a lock cleared under a live deploy never ends in a false success.
After apply, gates decide whether it succeeded (verification commands, the ECS rollout check);
with `--atomic`, a failed apply or gate converges back to what ran before the lock is released."""

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tf_release.flows import approvals, holds
from tf_release.flows.gates import Check, check_rollouts, run_verifications
from tf_release.flows.locks import (
    acquire_lock,
    enter_phase,
    refuse_if_alive,
    release_lock,
    still_ours,
)
from tf_release.model import naming
from tf_release.model.approval import Approval, Tally
from tf_release.model.config import Environment
from tf_release.model.errors import (
    ApplyRefused,
    AwsFailure,
    Cancelled,
    GateFailed,
    ImagesMissing,
    LockLost,
    ReleaseError,
    internal_error,
)
from tf_release.model.index import DeploymentPeriod, period_start
from tf_release.model.manifest import ImageChanges, Manifest, diff_images
from tf_release.model.rules import NO_OVERRIDES, Overrides
from tf_release.model.state import (
    Deployed,
    Deployment,
    DeploymentEntry,
    EnvironmentState,
    Lock,
    Override,
    partly_applied,
)
from tf_release.stores.bundle import Stores, manifest_of, newest_version, state_to_write
from tf_release.stores.ssm import ReleasePointer
from tf_release.terraform.processes import Output
from tf_release.terraform.runner import PlanSummary


class TerraformRun(Protocol):
    """The Terraform run of one environment: a saved plan, then exactly that plan applied."""

    def plan(self) -> PlanSummary: ...

    def apply(self) -> None: ...


@dataclass(frozen=True)
class DeployPlan:
    """What a deploy is about to do: announced before Terraform runs, shown again before the
    operator confirms. `running`: the version the environment ran when the deploy began."""

    environment: str
    manifest: Manifest
    changes: ImageChanges
    terraform: PlanSummary | None = None
    running: int | None = None


Confirm = Callable[[DeployPlan], bool]
Announce = Callable[[DeployPlan], None]


def _always(plan: DeployPlan) -> bool:
    return True


def _silent(plan: DeployPlan) -> None:
    pass


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
            "checks": list(self.deployment.checks) if self.deployment else [],
        }


@dataclass(frozen=True)
class DeployOptions:
    """How a deploy runs: the environment's Terraform (None: SSM only), who confirms, how long
    to wait for another deploy, whether to stop after the plan, whether to check that the
    images still exist in ECR, whether to converge back on failure (None: the environment's
    `atomic`), whether to skip the verification commands, and where their output goes.
    `announce` hears what the deploy is about to do before it writes or runs anything.
    `overrides`: the release rules the operator goes past; `overridden`: those that held and
    were gone past, for the record."""

    terraform: TerraformRun | None = None
    confirm: Confirm = _always
    lock_timeout: float = 0
    plan_only: bool = False
    check_images: bool = True
    atomic: bool | None = None
    skip_verify: bool = False
    live: Output | None = None
    announce: Announce = _silent
    overrides: Overrides = NO_OVERRIDES
    overridden: tuple[Override, ...] = ()
    approved: tuple[Approval, ...] = ()  # the approvals that let it through, for the record
    wait_for_approval: float = 0.0  # seconds to wait for the approvals rule (deploy only)
    # told each plan as it becomes known (the image changes, then Terraform's counts), so that
    # a face can report a deploy that fails afterwards (the CLI's Markdown summary)
    observe: Announce = _silent


def deploy(
    stores: Stores,
    environment: str,
    version: int | None = None,
    options: DeployOptions = DeployOptions(),
) -> DeployResult:
    """Deploy a manifest (default: the newest) to its environment, unless a release rule holds
    it. A rollback's manifest is never held by soak (its images ran here), but only `rollback`
    goes through a freeze: a deploy is a deploy, whatever manifest it takes."""
    env = stores.config.environment(environment)
    current = state_to_write(stores, environment)
    number = version if version is not None else newest_version(stores, environment, current[0])
    manifest = manifest_of(stores, environment, number)
    overridden = holds.freeze(stores, env, options.overrides)
    if manifest.reverts is None:
        source, running = holds.soaked_in(stores, env, manifest.source)
        since = holds.promoted_since(
            running, manifest.images, manifest.digests, current[0].deployed
        )
        overridden += holds.soak(stores, env, source, since, options.overrides)
    gone_past: tuple[Override, ...] = ()
    standing: Tally | None = None
    if not options.plan_only:  # a plan deploys nothing: it is what approvers look at first
        gone_past, standing = approvals.enforce(
            stores, env, manifest, options.overrides, options.wait_for_approval
        )
    options = replace(
        options,
        overridden=options.overridden + overridden + gone_past,
        approved=standing.counted if standing else (),
    )
    return deploy_manifest(stores, env, manifest, current, options)


def check_images_exist(stores: Stores, state: EnvironmentState, images: dict[str, str]) -> None:
    """The images a deploy brings in must still exist; those already running are not asked."""
    running = set(state.deployed_images.values()) | set(state.held_images.values())
    new = [url for url in images.values() if url not in running]
    with stores.progress.step(f"checking that {len(new)} new image(s) exist"):
        missing = stores.registry.missing(new)
    if missing:
        raise ImagesMissing(
            f"{len(missing)} image(s) no longer exist in "
            f"{' or '.join(sorted({naming.registry_of(url) for url in missing}))}: "
            f"{', '.join(missing)} "
            "(pass --skip-image-check to deploy anyway)"
        )


def deploy_manifest(
    stores: Stores,
    env: Environment,
    manifest: Manifest,
    current: tuple[EnvironmentState, str | None],
    options: DeployOptions,
) -> DeployResult:
    """Every way out after the lock is taken (a failure, a refusal, an interrupt, a bug) puts SSM
    back, records the attempt and releases the lock, unless the lock is no longer ours."""
    held = manifest.held(env.pin_digests)  # what SSM will hold: at their digests, if pinned
    if options.check_images:
        check_images_exist(stores, current[0], held)
    terraform, confirm, plan_only = options.terraform, options.confirm, options.plan_only
    started_at = stores.clock()
    mark = holds.OVERRIDE_MARK if options.overridden else ""
    lock = Lock(
        deployment_id=f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}{mark}",
        version=manifest.version,
        holder=stores.caller,
        host=stores.host,
        started_at=started_at,
        pid=os.getpid(),
    )
    locked = acquire_lock(stores, env.name, lock, current, options.lock_timeout)
    state = locked[0]
    previous_version = state.deployed.version if state.deployed else None
    before: dict[str, str] = {}
    written = False
    phase = "ssm"  # where a failure stopped it: ssm, plan, apply, verify or ecs
    checks: list[Check] = []
    try:
        with stores.progress.step(f"reading the parameters of {env.name}"):
            before = stores.images.read_named(
                env.name, manifest.images.keys() | state.deployed_images
            )
        plan = DeployPlan(env.name, manifest, diff_images(before, held), running=previous_version)
        options.announce(plan)
        options.observe(plan)
        if terraform is None:
            if plan_only:
                return _finish_plan_only(stores, lock, plan, locked)
            if not confirm(plan):
                raise Cancelled("deploy declined; nothing was changed")
        written = True  # from the first write on, a failure puts SSM back
        with stores.progress.step(f"writing {plan.changes.count} SSM parameter(s) of {env.name}"):
            stores.images.replace(env.name, before, held)
            stores.images.write_pointer(
                env.name, ReleasePointer(manifest.version, len(manifest.images))
            )
        if terraform is not None:
            phase = "plan"
            with stores.progress.step(f"terraform plan ({env.name})"):
                plan = replace(plan, terraform=terraform.plan())
            options.observe(plan)
            if plan_only:
                _put_back(stores, env.name, before, previous_version)
                return _finish_plan_only(stores, lock, plan, locked)
            if not confirm(plan):
                raise Cancelled("plan declined; SSM was put back as it was")
            locked = enter_phase(stores, env.name, lock, "apply", locked)
            lock = locked[0].lock or lock
            phase = "apply"
            with stores.progress.step(f"terraform apply ({env.name})"):
                terraform.apply()
            locked = still_ours(stores, env.name, lock)
        phase = "verify"
        checks = _pass_gates(stores, env, manifest.name, held, lock, options)
        if checks:
            locked = still_ours(stores, env.name, lock)
    except LockLost:
        raise  # whoever cleared the lock put SSM back and recorded the deploy
    except (Exception, KeyboardInterrupt) as error:
        failure = _failure(error)
        if isinstance(failure, ApplyRefused):
            phase = "plan"  # Terraform changed nothing: the stack is as the plan found it
        if isinstance(failure, GateFailed):
            phase, checks = failure.phase, list(failure.checks)
        atomic = env.atomic if options.atomic is None else options.atomic
        if atomic and phase in ("apply", "verify", "ecs") and not isinstance(failure, Cancelled):
            if state.deployed is None:
                failure = _noted(failure, f"nothing was deployed to {env.name} before, so there "
                                 "is nothing to converge back to")  # fmt: skip
            else:
                converged = _converge(stores, env, terraform, state.deployed, lock)
                _finish(
                    stores, env.name, lock, "failed", previous_version,
                    f"{failure}; {converged.note}", still_ours(stores, env.name, lock),
                    manifest, extra=_record(phase, checks, options) | converged.record,
                )  # fmt: skip
                raise _noted(failure, converged.note) from None
        if written:
            try:
                locked = still_ours(stores, env.name, lock)  # never put back over a new holder
                _put_back(stores, env.name, before, previous_version)
            except LockLost as lost:
                raise LockLost(f"{failure}; then {lost}") from None
            except ReleaseError as restore_error:
                raise AwsFailure(
                    f"{failure}; then SSM could not be put back ({restore_error}). The lock "
                    f"stays: once AWS answers, run `tf-release unlock --env {env.name}`"
                ) from None
        outcome = "cancelled" if isinstance(failure, Cancelled) else "failed"
        _finish(
            stores, env.name, lock, outcome, previous_version, str(failure), locked,
            manifest, extra=_record(phase, checks, options),
        )  # fmt: skip
        if phase == "apply":  # the record's phase says it; the error line says what to do
            failure = _noted(failure, partly_applied(env.name))
        if isinstance(error, (KeyboardInterrupt, ReleaseError)):
            raise failure from None
        raise  # a ReleaseError as it is; anything else reaches the face as an internal error
    deployment = _finish(
        stores, env.name, lock, "succeeded", previous_version, "", locked, manifest,
        _ran(manifest, env, options.overridden), extra=_record(None, checks, options),
    )  # fmt: skip
    return DeployResult(deployment, plan)


def _pass_gates(
    stores: Stores,
    env: Environment,
    version: str,
    held: dict[str, str],
    lock: Lock,
    options: DeployOptions,
) -> list[Check]:
    """The verification commands (unless skipped), then the ECS rollout check: each raises
    GateFailed, with the checks so far, at the first that fails."""
    checks: list[Check] = []
    if env.verify and not options.skip_verify:
        variables = {
            "TF_RELEASE_PROJECT": stores.config.project,
            "TF_RELEASE_ENV": env.name,
            "TF_RELEASE_VERSION": version,
            "TF_RELEASE_DEPLOYMENT_ID": lock.deployment_id,
            "TF_RELEASE_IMAGES": json.dumps(held, sort_keys=True),
        }
        folder = stores.config.path.resolve().parent
        checks = run_verifications(
            env.verify, folder, variables, env.verify_timeout, stores.progress, options.live
        )
    try:
        rollouts = check_rollouts(
            stores.ecs_of(env.name), env.ecs_services, held, env.ecs_timeout, stores.progress
        )
    except GateFailed as failed:
        raise GateFailed(str(failed), failed.phase, [*checks, *failed.checks]) from None
    return checks + rollouts


def _ran(manifest: Manifest, env: Environment, overridden: tuple[Override, ...]) -> Deployed:
    """What the state will say runs, once the deploy has succeeded (who and when come then)."""
    return Deployed(
        manifest.version,
        dict(manifest.images),
        "",
        manifest.created_at,
        "",
        digests=dict(manifest.digests),
        pinned=env.pin_digests and bool(manifest.digests),
        overrides=overridden,
    )


def _record(phase: str | None, checks: list[Check], options: DeployOptions) -> dict[str, Any]:
    """What a deployment record keeps of the gates and of where a failure stopped."""
    return {
        "phase": phase,
        "checks": tuple(check.to_document() for check in checks),
        "skipped_verify": options.skip_verify,
        "overrides": options.overridden,
        "approvals": tuple(approval.shown() for approval in options.approved),
    }


@dataclass(frozen=True)
class _Converged:
    note: str  # for the error line: where the environment is now
    record: dict[str, Any]  # rolled_back_to and convergence, for the deployment record


def _converge(
    stores: Stores,
    env: Environment,
    terraform: TerraformRun | None,
    target: Deployed,
    lock: Lock,
) -> _Converged:
    """--atomic: with the lock still held, put SSM back to what ran before and plan and apply
    again, so the infrastructure returns to it too."""
    name = naming.format_version(target.version)
    try:
        still_ours(stores, env.name, lock)
        with stores.progress.step(f"converging {env.name} back to {name}"):
            _put_back(stores, env.name, target.held, target.version)
            if terraform is not None:
                terraform.plan()
                terraform.apply()
    except (Exception, KeyboardInterrupt) as error:
        reason = str(_failure(error)).splitlines()[0]
        return _Converged(
            f"converging back to {name} failed too ({reason}): {env.name} needs attention, "
            f"see `tf-release status --env {env.name}`",
            {"rolled_back_to": target.version, "convergence": "failed"},
        )
    return _Converged(
        f"converged back: {env.name} runs {name} again",
        {"rolled_back_to": target.version, "convergence": "succeeded"},
    )


def _noted(failure: ReleaseError, note: str) -> ReleaseError:
    """The same failure, its message followed by where the environment is now."""
    message = f"{failure}; {note}"
    if isinstance(failure, GateFailed):
        return GateFailed(message, failure.phase, failure.checks)
    noted = type(failure)(message)
    noted.exit_code = failure.exit_code
    return noted


def _failure(error: BaseException) -> ReleaseError:
    """How an ending is recorded: a ReleaseError as it is, an interrupt as cancelled, anything
    else (a bug) as an internal error, so even a crash leaves a true record."""
    if isinstance(error, ReleaseError):
        return error
    if isinstance(error, KeyboardInterrupt):
        return Cancelled("interrupted", 130)
    return ReleaseError(internal_error(error))


def _put_back(
    stores: Stores, environment: str, images: dict[str, str], version: int | None
) -> None:
    """Make SSM hold these images again, so no later Terraform run picks up undeployed ones.

    SSM is read first: after a failure part-way, only what was really changed is written back.
    """
    with stores.progress.step(f"putting the SSM parameters of {environment} back"):
        held = stores.images.read(environment, tolerant=True)  # a hand-written bad value too
        stores.images.replace(environment, held, images)
        pointer = None if version is None else ReleasePointer(version, len(images))
        stores.images.write_pointer(environment, pointer)


def _finish_plan_only(
    stores: Stores, lock: Lock, plan: DeployPlan, locked: tuple[EnvironmentState, str]
) -> DeployResult:
    release_lock(stores, plan.environment, lock, None, current=locked)
    return DeployResult(None, plan)


def _finish(
    stores: Stores,
    environment: str,
    lock: Lock,
    outcome: str,
    previous_version: int | None,
    message: str,
    locked: tuple[EnvironmentState, str],
    manifest: Manifest,
    ran: Deployed | None = None,
    extra: dict[str, Any] | None = None,
) -> Deployment:
    """Record how the deploy ended, tell the indexes, then release the lock (and, on success,
    mark it deployed). `extra`: the record's optional fields (phase, checks, convergence)."""
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
        **(extra or {}),
    )
    stores.deployments.record(deployment)
    index_deployment(stores, deployment, manifest.reason, manifest.reverts, locked[0])
    deployed = None
    if outcome == "succeeded" and ran is not None:
        deployed = replace(
            ran, deployment_id=lock.deployment_id, finished_at=finished_at, by=lock.holder
        )
    release_lock(stores, environment, lock, deployed, locked, (deployment, manifest.reason))
    return deployment


def index_deployment(
    stores: Stores,
    record: Deployment,
    reason: str | None,
    reverts: int | None,
    state: EnvironmentState,
) -> None:
    """Tell the indexes (index.py) how a deploy ended, before its lock goes: a deploy that no
    longer holds the lock is in them. `state`: the environment's, as the deploy last read it."""
    env, project = record.environment, stores.config.project
    entry = DeploymentEntry(
        record.key, record.finished_at, record.version, record.outcome, record.deployment_id
    )
    stores.index.update_version_use(env, record.version, lambda use: use.with_deployment(entry))
    if reverts is not None and record.outcome == "succeeded":
        stores.index.update_version_use(
            env, reverts, lambda use: use.with_rollback(record.version, record.finished_at)
        )
    known = state.remembering(record, reason).recent
    # a state that remembers no deployment, runs nothing and saw nothing fail: none ran before
    first = not state.recent and state.deployed is None and state.last_attempt is None
    starts = period_start(record.finished_at)
    stores.index.update_period(
        env,
        starts,
        lambda found: (
            DeploymentPeriod.begin(project, env, starts, known, first)
            if found is None
            else found.merged(known)
        ),
    )


def unlock(stores: Stores, environment: str, force: bool = False) -> Lock | None:
    """Clear a lock left by a run that died: SSM goes back to the deployed images (whatever it
    holds now), and the abandoned deploy is recorded with who cleared it. A lock whose process
    still runs on this host is cleared only with `force`. Returns the lock cleared, if any."""
    stores.config.environment(environment)
    state, etag = stores.states.get(environment)
    lock = state.lock
    if lock is None:
        return None
    if not force:
        refuse_if_alive(stores, environment, lock)
    deployed_images = state.held_images
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
        phase=lock.phase,  # "apply": the stack may be partly applied, and status says so
    )
    stores.deployments.record(abandoned)
    index_deployment(stores, abandoned, None, None, state)

    def clear(state: EnvironmentState) -> EnvironmentState:
        ours = state.lock is not None and state.lock.deployment_id == lock.deployment_id
        if not ours:
            return state
        return state.ended(abandoned, None)

    stores.states.update(environment, clear, current=(state, etag))
    return lock
