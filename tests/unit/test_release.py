"""The release lifecycle as Python calls, over in-process moto."""

from datetime import UTC, datetime, timedelta
from itertools import count

import boto3
import pytest

from tests.support.project import BUCKET, PROJECT, REGION, image
from tests.support.scenes import mark_holder_dead
from tf_release.flows import deploy, release, views
from tf_release.flows.deploy import DeployOptions
from tf_release.model.errors import BadInput, LockHeld, TerraformFailed
from tf_release.stores.bundle import Stores
from tf_release.stores.ssm import ReleasePointer
from tf_release.terraform.runner import PlanSummary


def ssm_images(label: str) -> dict[str, str]:
    ssm = boto3.client("ssm", region_name=REGION)
    found = ssm.get_parameters_by_path(Path=f"/{PROJECT}/image_ids/{label}")["Parameters"]
    return {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in found}


def s3_keys(prefix: str = "") -> list[str]:
    response = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for item in response.get("Contents", [])]


def publish_all(stores: Stores, tag: str, *names: str) -> None:
    for name in names or ("api", "worker"):
        release.publish(stores, name, image(name, tag))


def test_publish_writes_the_latest_pointer(stores: Stores) -> None:
    name = release.publish(stores, "api", image("api", "abc"))
    assert name == "/catalogue/image_ids/latest/api"
    assert ssm_images("latest") == {"api": image("api", "abc")}


def test_prepare_copies_the_source_label_into_manifest_v1(stores: Stores) -> None:
    publish_all(stores, "abc")
    prepared = release.prepare(stores, "stage", "first release")
    manifest = prepared.manifest
    assert manifest is not None and manifest.name == "v1"
    assert manifest.images == {"api": image("api", "abc"), "worker": image("worker", "abc")}
    assert manifest.source == "latest"
    assert manifest.created_by == "arn:aws:sts::123456789012:user/moto"
    assert sorted(prepared.changes.added) == ["api", "worker"]
    assert "catalogue/release_manifests/stage/v1.json" in s3_keys()


def test_versions_count_up_per_environment(stores: Stores) -> None:
    for tag in ("a1", "a2", "a3"):
        publish_all(stores, tag)
        assert release.prepare(stores, "stage", f"release {tag}").manifest is not None
    assert s3_keys("catalogue/release_manifests/stage/") == [
        f"catalogue/release_manifests/stage/v{n}.json" for n in (1, 2, 3)
    ]
    assert s3_keys("catalogue/release_manifests/prod/") == []


def test_deploy_writes_the_environment_pointers_and_records_the_deployment(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.prepare(stores, "stage", "first")
    result = deploy.deploy(stores, "stage")
    assert result.deployment is not None and result.deployment.outcome == "succeeded"
    assert ssm_images("stage") == {"api": image("api", "abc"), "worker": image("worker", "abc")}
    assert stores.images.read_pointer("stage") == ReleasePointer(1, 2)
    [status] = views.status(stores, ["stage"])
    assert status.deployed is not None and status.deployed.version == 1
    assert len(s3_keys("catalogue/deployments/stage/")) == 1


def test_deploy_writes_only_the_parameters_that_change(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.apply(stores, "stage", "first")
    release.publish(stores, "api", image("api", "def"))
    release.prepare(stores, "stage", "second")
    assert stores.session is not None
    stores.session.requests.clear()
    deploy.deploy(stores, "stage")
    assert stores.session.requests["ssm.PutParameter"] == 2  # api and the version pointer


def test_deploy_removes_images_that_left_the_manifest(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.apply(stores, "stage", "first")
    boto3.client("ssm", region_name=REGION).delete_parameter(
        Name="/catalogue/image_ids/latest/worker"
    )
    release.apply(stores, "stage", "retire the worker")
    assert ssm_images("stage") == {"api": image("api", "abc")}


def test_prepare_with_nothing_new_creates_nothing(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.apply(stores, "stage", "first")
    prepared = release.prepare(stores, "stage", "again")
    assert prepared.manifest is None and prepared.changes.empty
    forced = release.prepare(stores, "stage", "again", force=True)
    assert forced.manifest is not None and forced.manifest.name == "v2"


def test_selective_prepare_takes_only_the_named_images(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.apply(stores, "stage", "first")
    publish_all(stores, "def")
    prepared = release.prepare(stores, "stage", "only the api", images=["api"])
    assert prepared.manifest is not None
    assert prepared.manifest.images == {
        "api": image("api", "def"),
        "worker": image("worker", "abc"),
    }
    assert list(prepared.changes.changed) == ["api"]


def test_prod_promotes_what_stage_runs(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.apply(stores, "stage", "first")
    publish_all(stores, "def")  # newer images on latest must not reach prod
    prepared, _result = release.apply(stores, "prod", "promote")
    assert prepared.manifest is not None and prepared.manifest.source == "stage@v1"
    assert ssm_images("prod") == {"api": image("api", "abc"), "worker": image("worker", "abc")}


def test_rollback_deploys_the_previous_good_manifest_under_a_new_version(stores: Stores) -> None:
    publish_all(stores, "good")
    release.apply(stores, "stage", "good release")
    publish_all(stores, "bad")
    release.apply(stores, "stage", "bad release")
    manifest = release.rollback(stores, "stage", "bad release broke search").manifest
    assert manifest is not None
    assert manifest.name == "v3" and manifest.source == "v1"
    assert manifest.images == {"api": image("api", "good"), "worker": image("worker", "good")}
    assert ssm_images("stage") == manifest.images
    assert views.status(stores, ["stage"])[0].deployed.version == 3  # type: ignore[union-attr]


def test_rollback_to_a_named_version(stores: Stores) -> None:
    for tag in ("t1", "t2", "t3"):
        publish_all(stores, tag)
        release.apply(stores, "stage", tag)
    manifest = release.rollback(stores, "stage", "back to the first", to=1).manifest
    assert manifest is not None and manifest.source == "v1" and manifest.name == "v4"


def test_rollback_with_no_earlier_deployment_is_bad_input(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.apply(stores, "stage", "first")
    with pytest.raises(BadInput, match="no successful deployment before"):
        release.rollback(stores, "stage", "oops")


class FailingTerraform:
    def plan(self) -> PlanSummary:
        return PlanSummary(change=1)

    def apply(self) -> None:
        raise TerraformFailed("terraform apply failed: boom")


def test_a_failed_terraform_run_restores_ssm_and_records_the_failure(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.apply(stores, "stage", "first")
    publish_all(stores, "def")
    with pytest.raises(TerraformFailed):
        release.apply(
            stores, "stage", "second", options=DeployOptions(terraform=FailingTerraform())
        )
    assert ssm_images("stage") == {"api": image("api", "abc"), "worker": image("worker", "abc")}
    assert stores.images.read_pointer("stage") == ReleasePointer(1, 2)
    [status] = views.status(stores, ["stage"])
    assert status.deployed is not None and status.deployed.version == 1
    assert status.lock is None
    outcomes = [entry.outcome for entry in stores.deployments.entries("stage")]
    assert outcomes == ["failed", "succeeded"]


def test_a_second_deploy_while_one_holds_the_lock_names_the_holder(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.prepare(stores, "stage", "first")

    class Reentrant:
        def plan(self) -> PlanSummary:
            return PlanSummary()

        def apply(self) -> None:
            with pytest.raises(
                LockHeld, match=r"stage is locked: .*user/moto .* started deploying v1"
            ):
                deploy.deploy(stores, "stage")

    deploy.deploy(stores, "stage", options=DeployOptions(terraform=Reentrant()))


def test_unlock_clears_an_abandoned_lock_and_puts_ssm_back(stores: Stores) -> None:
    publish_all(stores, "abc")
    release.apply(stores, "stage", "first")
    publish_all(stores, "def")
    release.prepare(stores, "stage", "second")

    class Dies:
        def plan(self) -> PlanSummary:
            return PlanSummary()

        def apply(self) -> None:
            raise SystemExit("the laptop died")  # not a ReleaseError: nothing is cleaned up

    with pytest.raises(SystemExit):
        deploy.deploy(stores, "stage", options=DeployOptions(terraform=Dies()))
    mark_holder_dead(stores)
    [status] = views.status(stores, ["stage"])
    assert status.lock is not None and "unlock --env stage" in (status.describe_lock() or "")
    assert ssm_images("stage")["api"] == image("api", "def")

    lock = deploy.unlock(stores, "stage")
    assert lock is not None and lock.version == 2
    assert ssm_images("stage")["api"] == image("api", "abc")
    assert [e.outcome for e in stores.deployments.entries("stage")] == ["abandoned", "succeeded"]
    assert deploy.deploy(stores, "stage").deployment.outcome == "succeeded"  # type: ignore[union-attr]


def test_history_lists_the_newest_manifests_with_their_deployments(stores: Stores) -> None:
    for tag in ("t1", "t2", "t3"):
        publish_all(stores, tag)
        release.apply(stores, "stage", tag)
    publish_all(stores, "t4")
    release.prepare(stores, "stage", "t4")
    entries = views.history(stores, "stage", limit=3)
    assert [e.manifest.name for e in entries] == ["v4", "v3", "v2"]
    assert [len(e.deployments) for e in entries] == [0, 1, 1]


def test_status_at_a_time_names_the_version_that_ran_then(stores: Stores) -> None:
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    ticks = count()
    stores.clock = lambda: start + timedelta(hours=next(ticks))
    for tag in ("t1", "t2"):
        publish_all(stores, tag)
        release.apply(stores, "stage", tag)
    # v1 is created at 12:00 and deployed by 13:00; v2 created 14:00, deployed 15:00
    before = views.status(stores, ["stage"], at=start + timedelta(minutes=30))[0]
    assert before.deployed is None
    first = views.status(stores, ["stage"], at=start + timedelta(hours=2))[0]
    assert first.deployed is not None and first.deployed.version == 1
    now = views.status(stores, ["stage"], at=start + timedelta(days=1))[0]
    assert now.deployed is not None and now.deployed.version == 2


@pytest.mark.parametrize(
    "call",
    [
        lambda s: release.prepare(s, "qa", "x"),
        lambda s: release.prepare(s, "stage", "   "),
        lambda s: release.prepare(s, "stage", "x", images=["API"]),
        lambda s: release.prepare(s, "stage", "x", images=["missing"]),
        lambda s: deploy.deploy(s, "stage", version=9),
        lambda s: release.publish(s, "api", "not-a-url"),
        lambda s: release.publish(s, "api", image("api", "x"), label="stage"),
        lambda s: release.publish(s, "api", image("api", "x"), label="No Label"),
    ],
)
def test_bad_input_writes_nothing(stores: Stores, call) -> None:
    publish_all(stores, "abc")
    before_ssm, before_s3 = ssm_images("latest"), s3_keys()
    with pytest.raises(BadInput):
        call(stores)
    assert ssm_images("latest") == before_ssm and s3_keys() == before_s3


def test_the_allow_list_limits_what_is_published_and_released(stores: Stores) -> None:
    from dataclasses import replace

    stores.config = replace(stores.config, images=("api",))
    with pytest.raises(BadInput, match="not in the allow-list"):
        release.publish(stores, "worker", image("worker", "abc"))
    release.publish(stores, "api", image("api", "abc"))
    prepared = release.prepare(stores, "stage", "first")
    assert prepared.manifest is not None and list(prepared.manifest.images) == ["api"]
