"""`status` tells the truth about the newest deploy and about a state it cannot use."""

from dataclasses import replace
from datetime import UTC, datetime

import boto3
import pytest

from tests.support.project import BUCKET, REGION, image
from tests.support.scenes import (
    died_holding_the_lock,
    failed_to_deploy,
    next_prepared,
    released,
)
from tf_release.flows import deploy, drift, release, views
from tf_release.flows.deploy import DeployOptions
from tf_release.model.errors import Cancelled, TerraformFailed
from tf_release.stores.bundle import Stores
from tf_release.terraform.runner import PlanSummary

STATE = "catalogue/environments/stage/state.json"


def test_status_names_a_failed_last_attempt_beside_what_runs(stores: Stores) -> None:
    failed_to_deploy(stores)
    [stage] = views.status(stores, ["stage"])
    assert stage.deployed is not None and stage.deployed.version == 1
    attempt = stage.last_attempt
    assert attempt is not None
    assert (attempt.version, attempt.outcome) == (2, "failed")
    assert attempt.started_by == "arn:aws:sts::123456789012:user/moto"
    assert attempt.message == "terraform apply failed (exit 1): Error: quota"
    assert attempt.finished_at is not None
    assert stage.to_document()["last_attempt"] == {
        "version": "v2",
        "outcome": "failed",
        "finished_at": attempt.to_document()["finished_at"],
        "started_by": "arn:aws:sts::123456789012:user/moto",
        "message": "terraform apply failed (exit 1): Error: quota",
        "partly_applied": True,
    }


class InterruptedInApply:
    """Ctrl-C while Terraform applies: some resources may already have changed."""

    def plan(self) -> PlanSummary:
        return PlanSummary(change=1)

    def apply(self) -> None:
        raise KeyboardInterrupt


def test_a_deploy_interrupted_inside_terraform_apply_says_the_stack_may_be_partly_applied(
    stores: Stores,
) -> None:
    next_prepared(stores)
    with pytest.raises(Cancelled, match=r"^interrupted; the stack may be partly applied: "):
        deploy.deploy(stores, "stage", options=DeployOptions(terraform=InterruptedInApply()))
    [stage] = views.status(stores, ["stage"])
    assert stage.last_attempt is not None and stage.last_attempt.partly_applied
    assert stage.last_attempt.message == "interrupted"  # the record's, as it happened
    report = drift.verify(stores, "stage")
    assert not report.drifted
    assert report.notes == (
        "the newest deploy (v2, cancelled) stopped inside terraform apply: the stack may be "
        "partly applied: redeploy with `tf-release deploy --env stage`; `tf-release verify "
        "--env stage --terraform` shows what Terraform would change",
    )


class FailsToPlan:
    def plan(self) -> PlanSummary:
        raise TerraformFailed("terraform plan failed (exit 1): Error: no credentials")

    def apply(self) -> None:
        raise AssertionError("never reached")


def test_a_deploy_that_failed_before_terraform_apply_changed_nothing(stores: Stores) -> None:
    next_prepared(stores)
    with pytest.raises(TerraformFailed, match=r"no credentials$"):
        deploy.deploy(stores, "stage", options=DeployOptions(terraform=FailsToPlan()))
    [stage] = views.status(stores, ["stage"])
    assert stage.last_attempt is not None and not stage.last_attempt.partly_applied
    assert drift.verify(stores, "stage").notes == ()


def test_status_names_a_running_deploy_from_its_lock(stores: Stores) -> None:
    died_holding_the_lock(stores)
    [stage] = views.status(stores, ["stage"])
    attempt = stage.last_attempt
    assert attempt is not None
    assert (attempt.version, attempt.outcome, attempt.finished_at) == (2, "running", None)
    assert attempt.started_by == "arn:aws:sts::123456789012:user/moto"


def test_status_has_no_last_attempt_when_the_newest_deploy_succeeded(stores: Stores) -> None:
    released(stores)
    [stage, prod] = views.status(stores)
    assert stage.last_attempt is None and prod.last_attempt is None
    assert stage.to_document()["last_attempt"] is None


def test_status_at_a_time_names_the_attempt_that_failed_before_it(stores: Stores) -> None:
    failed_to_deploy(stores)
    [stage] = views.status(stores, ["stage"], at=datetime(2999, 1, 1, tzinfo=UTC))
    assert stage.deployed is not None and stage.deployed.version == 1
    assert stage.last_attempt is not None and stage.last_attempt.outcome == "failed"


def test_a_garbage_state_is_reported_and_the_other_environments_still_shown(
    stores: Stores,
) -> None:
    released(stores)
    released(stores, environment="prod")
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=STATE, Body=b"\x00junk")
    [stage, prod] = views.status(stores)
    assert stage.problem is not None and stage.deployed is None
    assert stage.problem.startswith(f"the state of stage is broken (s3://{BUCKET}/{STATE}: ")
    assert stage.problem.endswith("`tf-release repair --env stage`")
    assert prod.problem is None and prod.deployed is not None


def test_a_deleted_state_with_deployment_records_is_broken_not_empty(stores: Stores) -> None:
    released(stores)
    boto3.client("s3", region_name=REGION).delete_object(Bucket=BUCKET, Key=STATE)
    [stage] = views.status(stores, ["stage"])
    assert stage.problem is not None and "missing" in stage.problem
    assert "`tf-release repair --env stage`" in stage.problem


def test_a_deleted_state_with_only_manifests_is_broken_not_empty(stores: Stores) -> None:
    released(stores)
    release.prepare(stores, "prod", "first")
    boto3.client("s3", region_name=REGION).delete_object(
        Bucket=BUCKET, Key="catalogue/environments/prod/state.json"
    )
    [prod] = views.status(stores, ["prod"])
    assert prod.problem is not None and "missing" in prod.problem


def test_an_environment_never_released_is_not_broken(stores: Stores) -> None:
    [stage, prod] = views.status(stores)
    assert stage.problem is None and prod.problem is None and stage.deployed is None


def test_an_environment_asked_for_twice_is_shown_once_in_the_order_asked(stores: Stores) -> None:
    released(stores)
    statuses = views.status(stores, ["prod", "stage", "prod", "stage"])
    assert [item.environment for item in statuses] == ["prod", "stage"]


def test_deploys_finished_in_the_same_millisecond_list_the_newer_version_first(
    stores: Stores,
) -> None:
    """A clock held still (a rehearsal under TF_RELEASE_NOW) gives deploys one timestamp."""
    moment = datetime(2026, 3, 24, 10, tzinfo=UTC)
    stores.clock = lambda: moment
    for tag in ("one", "two"):
        release.publish(stores, "api", image("api", tag))
        release.apply(stores, "stage", tag)
    assert [entry.version for entry in stores.deployments.entries("stage")] == [2, 1]
    [stage] = views.status(stores, ["stage"], at=moment)
    assert stage.deployed is not None and stage.deployed.version == 2


def test_a_lock_cleared_after_dying_inside_terraform_apply_leaves_the_warning_in_status(
    stores: Stores,
) -> None:
    died_holding_the_lock(stores)
    stores.states.update(
        "stage",
        lambda state: (
            replace(state, lock=replace(state.lock, phase="apply")) if state.lock else state
        ),
    )
    deploy.unlock(stores, "stage")
    [stage] = views.status(stores, ["stage"])
    assert stage.last_attempt is not None and stage.last_attempt.outcome == "abandoned"
    assert stage.last_attempt.partly_applied
