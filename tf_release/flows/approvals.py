"""`tf-release approve`, and the `approvals` rule that holds a deploy until enough people other
than a manifest's author have approved that exact manifest (model/approval.py).

An approval is written by the approver's own credentials under their own STS UserId, once; it
is never edited or deleted, and taking it back writes a revocation beside it. A deploy counts
them when it starts, and `--wait-for-approval` polls until they are enough.
"""

import random
import time
from dataclasses import dataclass

from tf_release.flows.holds import check
from tf_release.model import naming
from tf_release.model.approval import Approval, Tally, may_approve, tally
from tf_release.model.config import Environment
from tf_release.model.errors import BadInput
from tf_release.model.manifest import Manifest
from tf_release.model.rules import APPROVALS, Hold, Overrides
from tf_release.model.state import Override
from tf_release.stores.bundle import Stores, manifest_of

WAIT_BETWEEN = (2.0, 30.0)  # seconds between two looks for approvals: first, then at most


@dataclass(frozen=True)
class Approved:
    approval: Approval
    tally: Tally | None  # where the manifest stands now (None: the environment needs none)


def approve(stores: Stores, environment: str, version: int, reason: str = "") -> Approved:
    """Record the caller's approval of ENV's manifest vN. Refused (bad input, nothing written)
    for the manifest's own author, an approver the rule does not name, a version that does not
    exist, or a second approval by the same person."""
    env = stores.config.environment(environment)
    reason = naming.check_reason(reason) if reason else ""
    manifest = manifest_of(stores, environment, version)
    arn, user_id = _caller(stores)
    if arn == manifest.created_by:
        raise BadInput(f"you wrote {manifest.name} of {environment}: someone else must approve it")
    if not may_approve(arn, env.rules.approvers):
        raise BadInput(
            f"{arn} may not approve in {environment}: its approvers are "
            f"{', '.join(env.rules.approvers)}"
        )
    approval = Approval(environment, version, manifest.sha256, arn, user_id, stores.clock(), reason)
    if not stores.approvals.add(approval):
        earlier = stores.approvals.get(environment, version, user_id)
        when = f" at {naming.format_time(earlier.approved_at)}" if earlier else ""
        raise BadInput(f"you approved {manifest.name} of {environment} already{when}")
    return Approved(approval, standing(stores, env, manifest))


def revoke(stores: Stores, environment: str, version: int, reason: str = "") -> Approved:
    """Take the caller's approval of vN back, by writing a revocation beside it."""
    env = stores.config.environment(environment)
    reason = naming.check_reason(reason) if reason else ""
    manifest = manifest_of(stores, environment, version)
    _, user_id = _caller(stores)
    approval = stores.approvals.get(environment, version, user_id)
    if approval is None:
        raise BadInput(f"you have not approved {manifest.name} of {environment}: nothing to revoke")
    if not stores.approvals.revoke(approval, stores.clock(), reason):
        raise BadInput(f"you took your approval of {manifest.name} of {environment} back already")
    return Approved(approval, standing(stores, env, manifest))


def standing(stores: Stores, env: Environment, manifest: Manifest) -> Tally | None:
    """How the manifest stands against ENV's approvals rule; None when ENV has none."""
    if not env.rules.approvals:
        return None
    found, revoked = stores.approvals.of(env.name, manifest.version)
    return tally(manifest, found, revoked, env.rules.approvals, env.rules.approvers)


def hold(env: Environment, standing: Tally | None) -> Hold | None:
    if standing is None or not standing.held:
        return None
    version = naming.format_version(standing.version)
    way = f"approve it with `tf-release approve --env {env.name} {version}`"
    return Hold(APPROVALS, None, standing.describe(), way)


def enforce(
    stores: Stores,
    env: Environment,
    manifest: Manifest,
    overrides: Overrides,
    wait: float = 0.0,
) -> tuple[tuple[Override, ...], Tally | None]:
    """Refuse a deploy of a manifest not approved enough (exit 5), unless overridden; with
    `wait`, look again (with backoff) for up to that many seconds first. A rollback's manifest
    is never held: it is the way out of trouble. Returns the override to record, and the
    approvals that let it through."""
    if manifest.reverts is not None or not env.rules.approvals:
        return (), None
    deadline = time.monotonic() + wait
    pause = WAIT_BETWEEN[0]
    while True:
        found = standing(stores, env, manifest)
        held = hold(env, found)
        if held is None or APPROVALS in overrides.rules or time.monotonic() >= deadline:
            return check(stores, env, held, overrides), found
        assert found is not None
        step = f"waiting for approvals of {manifest.name} ({len(found.counted)} of {found.needed})"
        with stores.progress.step(step):
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 2, WAIT_BETWEEN[1]) * random.uniform(0.8, 1.0)


def _caller(stores: Stores) -> tuple[str, str]:
    assert stores.session is not None, "open_stores gives every Stores its session"
    return stores.session.caller()
