"""Guarantee 2: the deploy lock lives in S3, says who holds it, fails fast or waits, and is
cleared only on purpose, with a record of who cleared it."""

import json
import os
import time
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import Cli
from tests.e2e.test_interrupts_and_locks import deploy_in_apply, slow_project
from tests.support.project import BUCKET, PROJECT, image
from tests.support.scenes import (
    died_holding_the_lock,
    holding_the_lock,
    mark_holder_dead,
    next_prepared,
)
from tf_release.flows import deploy
from tf_release.flows.deploy import DeployOptions
from tf_release.model import naming
from tf_release.model.errors import LockLost
from tf_release.model.state import Lock
from tf_release.stores.bundle import Stores
from tf_release.terraform.runner import PlanSummary


@pytest.fixture
def stale(cli: Cli) -> Cli:
    """stage runs v1; a deploy of v2 died holding the lock."""
    died_holding_the_lock(cli.stores())
    return cli


def test_a_second_deploy_fails_at_once_naming_holder_host_time_and_version(stale: Cli) -> None:
    started = time.monotonic()
    result = stale.run("deploy", "-e", "stage", "--yes")
    assert time.monotonic() - started < 10
    assert result.returncode == 3
    lock = stale.stores().states.get("stage")[0].lock
    assert lock is not None
    assert result.stderr.strip() == (
        f"tf-release: error: stage is locked: arn:aws:sts::123456789012:user/moto on {lock.host} "
        f"(process {lock.pid}) started deploying v2 at {naming.format_time(lock.started_at)}. "
        "Another deploy "
        "is in progress; if none is running, clear it with `tf-release unlock --env stage`"
    )


def test_lock_timeout_gives_up_after_the_time_given(stale: Cli) -> None:
    started = time.monotonic()
    result = stale.run("deploy", "-e", "stage", "--yes", "--lock-timeout", "3")
    assert result.returncode == 3
    assert 3 <= time.monotonic() - started < 30


def test_unlock_records_who_cleared_the_lock(stale: Cli) -> None:
    stale.ok("unlock", "-e", "stage", "--yes")
    stores = stale.stores()
    [abandoned, _] = list(stores.deployments.entries("stage"))
    record = stores.deployments.get(abandoned)
    assert record.outcome == "abandoned" and record.version == 2
    assert record.cleared_by == "arn:aws:sts::123456789012:user/moto"
    shown = json.loads(stale.ok("show", "-e", "stage", "v2", "--json"))
    assert [d["outcome"] for d in shown["deployments"]] == ["abandoned"]


# A lock is released on every way out of a deploy, and `unlock` works whatever SSM holds.


def put_parameter(cli: Cli, image_name: str, value: str) -> None:
    cli.client("ssm").put_parameter(
        Name=f"/catalogue/image_ids/stage/{image_name}", Value=value, Type="String", Overwrite=True
    )


def test_a_deploy_stopped_by_a_bad_parameter_releases_its_lock(cli: Cli) -> None:
    stores = cli.stores()
    next_prepared(stores)
    put_parameter(cli, "api", "not a url")
    first = cli.run("deploy", "-e", "stage", "--yes")
    assert first.returncode == 2, first.stderr
    assert "/catalogue/image_ids/stage/api" in first.stderr
    state = stores.states.get("stage")[0]
    assert state.lock is None and state.deployed is not None and state.deployed.version == 1
    again = cli.run("deploy", "-e", "stage", "--yes")
    assert again.returncode == 2, again.stderr  # the same bad value again, not a held lock
    outcomes = [entry.outcome for entry in stores.deployments.entries("stage")]
    assert outcomes == ["failed", "failed", "succeeded"]


def test_unlock_puts_ssm_back_whatever_it_holds(stale: Cli) -> None:
    put_parameter(stale, "api", "not a url")
    put_parameter(stale, "stray", "not a url either")
    stale.ok("unlock", "-e", "stage", "--yes")
    assert stale.stores().images.read("stage") == {"api": image("api", "one")}
    stale.ok("deploy", "-e", "stage", "--yes")


# Whose lock is it: a live holder keeps it, and a deploy whose lock was cleared stops.


class ClearedUnder:
    """A Terraform run during whose plan or apply another operator runs `unlock --force`, and
    perhaps a new deploy takes the lock (`then`)."""

    def __init__(self, stores: Stores, step: str, then: Lock | None = None) -> None:
        self.stores, self.step, self.then, self.applied = stores, step, then, False

    def _clear(self, step: str) -> None:
        if step == self.step:
            deploy.unlock(self.stores, "stage", force=True)
            if self.then is not None:
                self.stores.states.update("stage", lambda s: replace(s, lock=self.then))

    def plan(self) -> PlanSummary:
        self._clear("plan")
        return PlanSummary(change=1)

    def apply(self) -> None:
        self._clear("apply")
        self.applied = True


def test_a_deploy_whose_lock_is_cleared_during_plan_stops_before_apply(stores: Stores) -> None:
    next_prepared(stores)
    run = ClearedUnder(stores, "plan")
    with pytest.raises(LockLost, match="lock of stage was cleared under this deploy") as lost:
        deploy.deploy(stores, "stage", options=DeployOptions(terraform=run))
    assert lost.value.exit_code == 1 and not run.applied
    state = stores.states.get("stage")[0]
    assert state.lock is None and state.deployed is not None and state.deployed.version == 1
    assert [e.outcome for e in stores.deployments.entries("stage")] == ["abandoned", "succeeded"]
    assert stores.images.read("stage") == {"api": image("api", "one")}


def test_a_deploy_whose_lock_is_cleared_during_apply_records_nothing_as_succeeded(
    stores: Stores,
) -> None:
    next_prepared(stores)
    with pytest.raises(LockLost) as lost:
        deploy.deploy(
            stores, "stage", options=DeployOptions(terraform=ClearedUnder(stores, "apply"))
        )
    assert str(lost.value).endswith(
        "the stack may be partly applied: redeploy with `tf-release deploy --env stage`; "
        "`tf-release verify --env stage --terraform` shows what Terraform would change"
    )
    state = stores.states.get("stage")[0]
    assert state.lock is None and state.deployed is not None and state.deployed.version == 1
    assert [e.outcome for e in stores.deployments.entries("stage")] == ["abandoned", "succeeded"]


def test_a_deploy_whose_lock_was_taken_over_leaves_the_new_holders_lock(stores: Stores) -> None:
    next_prepared(stores)
    other = Lock("other-deploy", 2, "someone", "elsewhere", stores.clock(), pid=4242)
    run = ClearedUnder(stores, "apply", then=other)
    with pytest.raises(LockLost):
        deploy.deploy(stores, "stage", options=DeployOptions(terraform=run))
    state = stores.states.get("stage")[0]
    assert state.lock is not None and state.lock.deployment_id == "other-deploy"
    assert state.deployed is not None and state.deployed.version == 1


def test_an_ssm_only_deploy_whose_lock_is_cleared_is_not_marked_deployed(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no Terraform there is no step long enough to check before: the releasing
    compare-and-swap finds out, after the record, and says so."""
    next_prepared(stores)
    real = stores.images.write_pointer

    def cleared_first(*args: Any) -> None:
        monkeypatch.setattr(stores.images, "write_pointer", real)
        deploy.unlock(stores, "stage", force=True)
        real(*args)

    monkeypatch.setattr(stores.images, "write_pointer", cleared_first)
    with pytest.raises(LockLost) as lost:
        deploy.deploy(stores, "stage")
    assert "its record stands, but stage is not marked as running v2" in str(lost.value)
    state = stores.states.get("stage")[0]
    assert state.lock is None and state.deployed is not None and state.deployed.version == 1


def test_unlock_refuses_while_the_holder_lives_on_this_host_unless_forced(cli: Cli) -> None:
    holding_the_lock(cli.stores())  # held by this test's own process, which is alive
    refused = cli.run("unlock", "-e", "stage", "--yes")
    assert refused.returncode == 3
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"tf-release: error: stage is locked by process {os.getpid()} on ")
    assert "--force" in line
    assert cli.stores().states.get("stage")[0].lock is not None
    cli.ok("unlock", "-e", "stage", "--yes", "--force")
    assert cli.stores().states.get("stage")[0].lock is None


def test_a_live_deploy_whose_lock_is_forced_open_exits_1_and_is_not_marked_deployed(
    tf_cli: Cli,
) -> None:
    slow_project(tf_cli, seconds=6)
    stores = tf_cli.stores()
    run = deploy_in_apply(tf_cli)
    refused = tf_cli.run("unlock", "-e", "stage", "--yes")
    assert refused.returncode == 3 and f"process {run.pid} " in refused.stderr
    tf_cli.ok("unlock", "-e", "stage", "--yes", "--force")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1, err
    assert "lock of stage was cleared under this deploy" in err.strip().splitlines()[-1]
    state = stores.states.get("stage")[0]
    assert state.lock is None and state.deployed is not None and state.deployed.version == 1
    assert [e.outcome for e in stores.deployments.entries("stage")] == ["abandoned", "succeeded"]


class DiesInApply:
    def plan(self) -> PlanSummary:
        return PlanSummary(change=1)

    def apply(self) -> None:
        raise SystemExit("the laptop died during apply")


def test_status_and_unlock_say_a_lock_that_died_in_apply_may_leave_the_stack_partly_applied(
    cli: Cli,
) -> None:
    stores = cli.stores()
    holding_the_lock(stores, terraform=DiesInApply())
    mark_holder_dead(stores)
    note = "the stack may be partly applied: redeploy with `tf-release deploy --env stage`"
    [status] = json.loads(cli.ok("status", "-e", "stage", "--json"))
    assert status["lock"]["phase"] == "apply" and note in status["lock"]["explanation"]
    assert note in cli.ok("unlock", "-e", "stage", "--yes")


def test_a_lock_written_before_pids_were_recorded_is_read_and_cleared(cli: Cli) -> None:
    stores = cli.stores()
    died_holding_the_lock(stores)
    key = naming.state_key(PROJECT, "stage")
    s3 = cli.client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    del document["lock"]["pid"]
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())
    lock = stores.states.get("stage")[0].lock
    assert lock is not None and lock.pid is None
    cli.ok("unlock", "-e", "stage", "--yes")
    assert stores.states.get("stage")[0].lock is None
