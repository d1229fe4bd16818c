"""Gates that decide whether a deploy succeeded: Terraform saying "applied" is not ECS running it.

Verification commands (the team's smoke tests) run in order after apply; the first that fails
or times out fails the deploy. The ECS rollout check waits until each service has finished
rolling out, then compares the images its task definition runs with the manifest's, so a
circuit-breaker rollback to the old task definition is a failed deploy, not a quiet success.
"""

import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tf_release.model.errors import GateFailed
from tf_release.model.progress import Progress
from tf_release.stores.ecs import EcsServices
from tf_release.terraform import processes
from tf_release.terraform.processes import Output

FIRST_POLL = 2.0  # seconds between polls, doubling up to MAX_POLL
MAX_POLL = 15.0
VERIFY_GRACE = 10.0  # seconds a timed-out verification command gets to stop after SIGINT
VERIFY_LINES = 5  # lines of a failed command's output kept in the deployment record


@dataclass(frozen=True)
class Check:
    """One gate's verdict on one thing, as deployment records and `--json` show it."""

    name: str
    ok: bool
    seconds: float  # from the start of the gate to the verdict
    detail: str

    def to_document(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "detail": self.detail,
        }


def run_verifications(
    commands: Sequence[Sequence[str]],
    cwd: Path,
    variables: Mapping[str, str],
    timeout: float,
    progress: Progress,
    live: Output | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[Check]:
    """Run each command (an argument list, never a shell; `{env}` and `{version}` substituted)
    from `cwd` with `variables` added to its environment, at most `timeout` seconds each.

    Raises GateFailed (phase "verify") at the first that fails, with its last lines of output.
    """
    substitutions = {
        "{env}": variables.get("TF_RELEASE_ENV", ""),
        "{version}": variables.get("TF_RELEASE_VERSION", ""),
    }
    checks: list[Check] = []
    for command in commands:
        argv = [_substitute(argument, substitutions) for argument in command]
        name = shlex.join(argv)
        started = clock()
        with progress.step(f"verifying: {name}"):
            try:
                finished = processes.run(argv, cwd, variables, live, timeout, VERIFY_GRACE)
            except OSError as error:
                finished = processes.Finished(127, "", f"cannot run it: {error.strerror}\n")
        seconds = clock() - started
        if finished.code == 0 and not finished.timed_out:
            checks.append(Check(name, True, seconds, ""))
            continue
        how = f"timed out after {timeout:g} s" if finished.timed_out else f"exit {finished.code}"
        tail = [line for line in (finished.out + finished.err).splitlines() if line.strip()]
        detail = "\n".join([how, *tail[-VERIFY_LINES:]])
        checks.append(Check(name, False, seconds, detail))
        last = f": {tail[-1].strip()}" if tail else ""
        raise GateFailed(f"verification `{name}` failed ({how}){last}", "verify", checks)
    return checks


def _substitute(argument: str, substitutions: Mapping[str, str]) -> str:
    for placeholder, value in substitutions.items():
        argument = argument.replace(placeholder, value)
    return argument


def check_rollouts(
    ecs: EcsServices,
    services: Sequence[str],
    images: Mapping[str, str],
    timeout: float,
    progress: Progress,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Check]:
    """Wait (at most `timeout` seconds) for each `"cluster/service"` to finish rolling out, then
    check it runs the manifest's `images` ({image name: url}) in the containers named for them.

    Raises GateFailed (phase "ecs") for a failed or rolled-back rollout, other images, or a
    service that never settled; otherwise returns one passing Check per service.
    """
    pending = list(dict.fromkeys(services))
    if not pending:
        return []
    started = clock()
    deadline = started + timeout
    checks: list[Check] = []
    delay = FIRST_POLL
    with progress.step(f"waiting for {len(pending)} ECS service(s) to finish rolling out"):
        while pending:
            described = ecs.describe(pending)
            failures: list[str] = []
            waiting: dict[str, str] = {}
            for service in pending:
                description = described[service]
                state = rollout_of(description)
                if state.waiting:
                    waiting[service] = state.detail
                    continue
                task_definition = description.get("taskDefinition", "")
                running = ecs.images(task_definition) if task_definition else {}
                problem = state.detail if state.failed else image_problem(running, images)
                runs = runs_of(task_definition, running)
                seconds = clock() - started
                if problem is None:
                    checks.append(Check(_name(service), True, seconds, f"runs {runs}"))
                    continue
                checks.append(Check(_name(service), False, seconds, f"{problem}; runs {runs}"))
                failures.append(f"{service}: {problem}; runs {runs}")
            if failures:
                raise GateFailed(f"ECS rollout failed: {'; '.join(failures)}", "ecs", checks)
            pending = list(waiting)
            if not pending:
                break
            now = clock()
            if now >= deadline:
                for service, detail in waiting.items():
                    checks.append(Check(_name(service), False, now - started, detail))
                never = ", ".join(f"{service} ({detail})" for service, detail in waiting.items())
                raise GateFailed(
                    f"ECS services did not finish rolling out within {timeout:g} s: {never}",
                    "ecs",
                    checks,
                )
            sleep(min(delay, deadline - now))
            delay = min(delay * 2, MAX_POLL)
    return checks


@dataclass(frozen=True)
class Rollout:
    waiting: bool = False
    failed: bool = False
    detail: str = ""


def rollout_of(description: Mapping[str, Any]) -> Rollout:
    """Where a service's deployment stands, from its deployments as DescribeServices shows them.

    With a rollout state (ECS rolling deployments): the PRIMARY deployment COMPLETED, or FAILED,
    or a PRIMARY that is the circuit breaker's rollback, which fails at once rather than after
    the rollback. Without one (other deployment controllers): one deployment, all tasks running.
    """
    deployments = description.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        return Rollout(waiting=True, detail="no PRIMARY deployment yet")
    counts = f"{primary.get('runningCount', 0)}/{primary.get('desiredCount', 0)} tasks running"
    state = primary.get("rolloutState")
    reason = primary.get("rolloutStateReason") or ""
    if state is None:
        if len(deployments) == 1 and primary.get("runningCount") == primary.get("desiredCount"):
            return Rollout()
        return Rollout(waiting=True, detail=f"{len(deployments)} deployment(s), {counts}")
    if state == "FAILED":
        return Rollout(failed=True, detail=f"rollout FAILED ({reason or 'no reason given'})")
    if "circuit breaker" in reason.lower():
        failed = [d.get("rolloutStateReason") for d in deployments if d is not primary]
        why = "; ".join(r for r in failed if r)
        return Rollout(
            failed=True,
            detail=f"rolled back by ECS ({reason}{f', after: {why}' if why else ''})",
        )
    if state == "COMPLETED":
        return Rollout()
    return Rollout(waiting=True, detail=f"{state}, {counts}")


def image_problem(running: Mapping[str, str], images: Mapping[str, str]) -> str | None:
    """Why the containers `running` are not the release's `images`, or None when they are.

    A service none of whose containers is named for a release image fails too: the gate would
    pass it without having checked anything (container name == image name).
    """
    named = sorted(name for name in running if name in images)
    if not named:
        containers = ", ".join(sorted(running)) or "none"
        return f"none of its containers ({containers}) is named for an image of the release"
    other = [
        f"container {name} has {running[name]}, not {images[name]}"
        for name in named
        if running[name] != images[name]
    ]
    return "; ".join(other) or None


def runs_of(task_definition: str, running: Mapping[str, str]) -> str:
    """`api:7 (api=…, envoy=…)`: the task definition's family and revision, and its images."""
    containers = ", ".join(f"{name}={image}" for name, image in sorted(running.items()))
    return f"{task_definition.rpartition('/')[2] or 'no task definition'} ({containers})"


def _name(service: str) -> str:
    return f"ecs {service}"
