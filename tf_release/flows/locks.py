"""The deploy lock, held in the environment state so that it holds across machines: taking it
(or waiting for it), checking a long step has not lost it, moving it to the apply phase, letting
it go with how the deploy ended, and telling whether a lock's holder still runs."""

import os
import time
from dataclasses import replace
from pathlib import Path

from tf_release.model import naming
from tf_release.model.errors import (
    LockHeld,
    LockLost,
)
from tf_release.model.state import (
    Deployed,
    Deployment,
    EnvironmentState,
    Lock,
)
from tf_release.stores.bundle import Stores

LOCK_POLL_SECONDS = 2.0


def acquire_lock(
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
            _pause_for_lock(stores, environment, deadline)


def _pause_for_lock(stores: Stores, environment: str, deadline: float) -> None:
    with stores.progress.step(f"waiting for the lock of {environment}"):
        time.sleep(min(LOCK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def wait_unlocked(
    stores: Stores,
    environment: str,
    current: tuple[EnvironmentState, str | None],
    timeout: float,
) -> tuple[EnvironmentState, str | None]:
    """The state once no deploy holds the lock, waiting up to `timeout` seconds (--lock-timeout)
    as taking the lock would: flows that write a manifest before they take it (apply, rollback)
    wait here, then decide from what the other deploy left. Past the deadline, LockHeld."""
    deadline = time.monotonic() + timeout
    while current[0].lock is not None:
        if time.monotonic() >= deadline:
            check_unlocked(current[0], environment)
        _pause_for_lock(stores, environment, deadline)
        current = stores.states.get(environment)
    return current


def check_unlocked(state: EnvironmentState, environment: str) -> None:
    """Fail fast, naming the holder, before a flow writes anything."""
    if state.lock is not None:
        raise LockHeld(
            f"{environment} is locked: {state.lock.describe()}. Another deploy is in "
            "progress; if none is running, clear it with "
            f"`tf-release unlock --env {environment}`"
        )


def check_ours(
    state: EnvironmentState, environment: str, lock: Lock, recorded: bool = False
) -> Lock:
    """A deploy whose lock was cleared (or taken over) must not write, record or release.

    `recorded`: found out only when releasing, after the record (an SSM-only deploy, whose
    cost stays flat, checks nowhere before); the message then says what the record claims."""
    if state.lock is not None and state.lock.deployment_id == lock.deployment_id:
        return state.lock
    version = naming.format_version(lock.version)
    if recorded:
        raise LockLost(
            f"the lock of {environment} was cleared under this deploy of {version} as it "
            f"finished: its record stands, but {environment} is not marked as running "
            f"{version}; redeploy with `tf-release deploy --env {environment}`"
        )
    message = (
        f"the lock of {environment} was cleared under this deploy of {version}, which stopped "
        "and recorded nothing as deployed"
    )
    note = lock.partly_applied(environment)
    raise LockLost(f"{message}; {note}" if note else message)


def enter_phase(
    stores: Stores, environment: str, lock: Lock, phase: str, locked: tuple[EnvironmentState, str]
) -> tuple[EnvironmentState, str]:
    """Record in the lock how far the deploy got; the compare-and-swap also proves it is ours."""

    def enter(state: EnvironmentState) -> EnvironmentState:
        return replace(state, lock=replace(check_ours(state, environment, lock), phase=phase))

    return stores.states.update(environment, enter, current=locked)


def still_ours(stores: Stores, environment: str, lock: Lock) -> tuple[EnvironmentState, str]:
    """One read before a record or a put-back: after a long step the lock may be gone."""
    state, etag = stores.states.get(environment)
    check_ours(state, environment, lock)
    assert etag is not None  # a state that holds our lock exists
    return state, etag


def release_lock(
    stores: Stores,
    environment: str,
    lock: Lock,
    deployed: Deployed | None,
    current: tuple[EnvironmentState, str | None] | None = None,
    ended: tuple[Deployment, str] | None = None,
) -> None:
    """Release the lock; with `ended` (the deploy's record and its manifest's reason), remember
    how it went: among the recent deployments, and a failure as the last attempt until a deploy
    succeeds."""

    def release(state: EnvironmentState) -> EnvironmentState:
        check_ours(state, environment, lock, recorded=True)
        if ended is None:
            return replace(state, lock=None)
        return state.ended(*ended, deployed)

    stores.states.update(environment, release, current=current)


def current_lock(stores: Stores, environment: str) -> Lock | None:
    """Who holds the environment's deploy lock, if anyone (shown before `unlock` asks)."""
    stores.config.environment(environment)
    return stores.states.get(environment)[0].lock


def holder_alive(stores: Stores, lock: Lock) -> bool:
    """Whether the lock's deploy still runs; known only on its own host, for a lock naming its
    process (a zombie, killed but not yet reaped, counts as dead)."""
    if lock.pid is None or lock.host != stores.host:
        return False
    try:
        os.kill(lock.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        stat = Path(f"/proc/{lock.pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def refuse_if_alive(stores: Stores, environment: str, lock: Lock) -> None:
    """`unlock` under a live deploy would let it record success over the old images."""
    if holder_alive(stores, lock):
        raise LockHeld(
            f"{environment} is locked by process {lock.pid} on {lock.host}, which is still "
            f"running: {lock.holder} started deploying {naming.format_version(lock.version)} "
            f"at {naming.format_time(lock.started_at)}. Wait for it or stop it; "
            f"`tf-release unlock --env {environment} --force` clears the lock anyway"
        )
