"""`repair` rebuilds an environment's state (a cache) from the deployment records (the log), and
`history` names a manifest the bucket lost instead of skipping it."""

import boto3
import pytest

from tests.support.project import BUCKET, REGION, image
from tests.support.scenes import died_holding_the_lock, failed_to_deploy, next_prepared, released
from tf_release.flows import deploy, release, repair, views
from tf_release.model.errors import BadInput, LockHeld, ReleaseError
from tf_release.model.state import EnvironmentState
from tf_release.stores.bundle import Stores

STATE = "catalogue/environments/stage/state.json"


def s3():  # type: ignore[no-untyped-def]
    return boto3.client("s3", region_name=REGION)


def healthy_then_broken(stores: Stores, body: bytes | None) -> EnvironmentState:
    """stage runs v2 after v1, v3 is prepared; then its state is overwritten (or deleted)."""
    next_prepared(stores)
    deploy.deploy(stores, "stage")
    release.publish(stores, "api", image("api", "three"))
    release.prepare(stores, "stage", "three")
    healthy = stores.states.get("stage")[0]
    if body is None:
        s3().delete_object(Bucket=BUCKET, Key=STATE)
    else:
        s3().put_object(Bucket=BUCKET, Key=STATE, Body=body)
    return healthy


def test_repair_rebuilds_a_garbage_state_from_the_records(stores: Stores) -> None:
    healthy = healthy_then_broken(stores, b"\x00garbage")
    plan = repair.plan(stores, "stage")
    assert plan.needed and plan.problem is not None and "not valid JSON" in plan.problem
    assert plan.state == healthy
    assert plan.state.latest_version == 3 and plan.state.deployed is not None
    assert plan.state.deployed.version == 2 and plan.state.deployed.images == {
        "api": image("api", "two")
    }
    repair.repair(stores, plan)
    assert stores.states.get("stage")[0] == healthy
    assert deploy.deploy(stores, "stage").deployment is not None  # usable again


def test_repair_recreates_a_deleted_state(stores: Stores) -> None:
    healthy = healthy_then_broken(stores, None)
    plan = repair.plan(stores, "stage")
    assert plan.needed and plan.etag is None and "missing" in (plan.problem or "")
    repair.repair(stores, plan)
    assert stores.states.get("stage")[0] == healthy


def test_repair_of_a_healthy_state_has_nothing_to_write(stores: Stores) -> None:
    released(stores)
    plan = repair.plan(stores, "stage")
    assert not plan.needed and plan.problem is None


def test_repair_skips_failed_deploys_for_the_newest_that_succeeded(stores: Stores) -> None:
    failed_to_deploy(stores)
    s3().put_object(Bucket=BUCKET, Key=STATE, Body=b"{}")
    plan = repair.plan(stores, "stage")
    assert plan.state.deployed is not None and plan.state.deployed.version == 1
    assert plan.state.latest_version == 2 and plan.state.lock is None


def test_repair_does_not_overwrite_a_state_changed_since_it_was_read(stores: Stores) -> None:
    healthy_then_broken(stores, b"junk")
    plan = repair.plan(stores, "stage")
    s3().put_object(Bucket=BUCKET, Key=STATE, Body=b"other junk")
    with pytest.raises(ReleaseError, match="changed while"):
        repair.repair(stores, plan)
    assert s3().get_object(Bucket=BUCKET, Key=STATE)["Body"].read() == b"other junk"


def test_repair_leaves_a_readable_lock_to_unlock(stores: Stores) -> None:
    died_holding_the_lock(stores)
    with pytest.raises(LockHeld, match="tf-release unlock --env stage"):
        repair.plan(stores, "stage")


def test_repair_of_an_unknown_environment_is_bad_input(stores: Stores) -> None:
    with pytest.raises(BadInput):
        repair.plan(stores, "qa")


def test_history_shows_a_deleted_manifest_as_missing(stores: Stores) -> None:
    next_prepared(stores)
    release.prepare(stores, "stage", "three", force=True)
    s3().delete_object(Bucket=BUCKET, Key="catalogue/release_manifests/stage/v2.json")
    entries = views.history(stores, "stage")
    assert [entry.version for entry in entries] == [3, 2, 1]
    assert entries[1].to_document() == {"version": "v2", "missing": True}
    assert entries[0].to_document()["version"] == "v3"
    assert len(entries[2].to_document()["deployments"]) == 1
