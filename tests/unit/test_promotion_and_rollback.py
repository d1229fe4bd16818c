"""Promotion copies what the source environment ran; rollback is safe to repeat; retries reuse
the manifest they would write again (issue #10)."""

import io
from collections.abc import Callable

import boto3
import pytest

from tests.support import scenes
from tests.support.project import BUCKET, PROJECT, REGION, image, push_image
from tf_release.faces import output
from tf_release.flows import deploy, release, views
from tf_release.flows.deploy import DeployOptions
from tf_release.model.errors import BadInput, ImagesMissing, TerraformFailed
from tf_release.stores.bundle import Stores
from tf_release.terraform.runner import PlanSummary


def manifest_keys(environment: str) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PROJECT}/release_manifests/{environment}/")
    return [item["Key"].rsplit("/", 1)[1] for item in listed.get("Contents", [])]


def ssm_image(label: str, name: str) -> str:
    ssm = boto3.client("ssm", region_name=REGION)
    return ssm.get_parameter(Name=f"/{PROJECT}/image_ids/{label}/{name}")["Parameter"]["Value"]


def hand_edit(label: str, name: str, url: str) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=f"/{PROJECT}/image_ids/{label}/{name}", Value=url, Type="String", Overwrite=True
    )


class Applies:
    """A Terraform run whose apply does `during` first: something happening mid-apply."""

    def __init__(self, during: Callable[[], object] = lambda: None) -> None:
        self.during = during

    def plan(self) -> PlanSummary:
        return PlanSummary(change=1)

    def apply(self) -> None:
        self.during()


class FailsToApply(Applies):
    def apply(self) -> None:
        raise TerraformFailed("terraform apply failed: boom")


def stage_runs_one_and_latest_has_two(stores: Stores) -> None:
    scenes.released(stores, ("api", "worker"))
    release.publish(stores, "api", image("api", "two"))


# 1. A promotion takes what the source environment ran


def test_a_promotion_records_the_source_environment_and_its_version(stores: Stores) -> None:
    scenes.released(stores, ("api",))
    prepared = release.prepare(stores, "prod", "promote")
    assert prepared.manifest is not None and prepared.manifest.source == "stage@v1"
    assert prepared.manifest.images == {"api": image("api", "one")}


def test_a_promotion_during_a_running_source_deploy_takes_what_the_source_ran(
    stores: Stores,
) -> None:
    stage_runs_one_and_latest_has_two(stores)
    promoted: list[release.Prepared] = []

    def promote_prod() -> None:
        promoted.append(release.apply(stores, "prod", "promote while stage deploys")[0])

    release.apply(stores, "stage", "two", options=DeployOptions(terraform=Applies(promote_prod)))
    [prepared] = promoted
    assert prepared.manifest is not None and prepared.manifest.source == "stage@v1"
    assert ssm_image("prod", "api") == image("api", "one")


def test_a_promotion_after_a_killed_source_deploy_takes_what_the_source_ran(
    stores: Stores,
) -> None:
    scenes.died_holding_the_lock(stores)  # stage's SSM holds api "two"; stage runs v1
    assert ssm_image("stage", "api") == image("api", "two")
    release.apply(stores, "prod", "promote")
    assert ssm_image("prod", "api") == image("api", "one")


def test_a_promotion_after_a_failed_source_deploy_takes_what_the_source_ran(
    stores: Stores,
) -> None:
    stage_runs_one_and_latest_has_two(stores)
    with pytest.raises(TerraformFailed):
        release.apply(stores, "stage", "two", options=DeployOptions(terraform=FailsToApply()))
    prepared, _ = release.apply(stores, "prod", "promote")
    assert prepared.manifest is not None and prepared.manifest.source == "stage@v1"
    assert ssm_image("prod", "api") == image("api", "one")


def test_a_promotion_ignores_a_hand_edited_source_parameter(stores: Stores) -> None:
    scenes.released(stores, ("api",))
    hand_edit("stage", "api", image("api", "edited"))
    release.apply(stores, "prod", "promote")
    assert ssm_image("prod", "api") == image("api", "one")


def test_a_selective_promotion_takes_the_image_from_the_source_manifest(stores: Stores) -> None:
    scenes.released(stores, ("api", "worker"))
    hand_edit("stage", "api", image("api", "edited"))
    prepared = release.prepare(stores, "prod", "just api", images=["api"])
    assert prepared.manifest is not None and prepared.manifest.source == "stage@v1"
    assert prepared.manifest.images == {"api": image("api", "one")}


def test_a_selective_promotion_of_an_image_the_source_does_not_run_is_refused(
    stores: Stores,
) -> None:
    scenes.released(stores, ("api",))
    with pytest.raises(BadInput, match="no image worker in stage's deployed manifest v1"):
        release.prepare(stores, "prod", "x", images=["worker"])
    assert manifest_keys("prod") == []


def test_promoting_from_an_environment_that_runs_nothing_is_refused(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    release.prepare(stores, "stage", "prepared, never deployed")
    with pytest.raises(BadInput, match="stage has nothing deployed yet"):
        release.prepare(stores, "prod", "x")


def test_diff_compares_against_what_the_source_runs(stores: Stores) -> None:
    scenes.released(stores, ("api",))
    hand_edit("stage", "api", image("api", "edited"))
    source, changes = views.diff_environment(stores, "prod")
    assert source == "stage@v1"
    assert changes.added == {"api": image("api", "one")}


def test_publish_to_an_environment_label_is_refused(stores: Stores) -> None:
    with pytest.raises(BadInput, match="'stage' is an environment"):
        release.publish(stores, "api", image("api", "one"), label="stage")


def test_a_plain_label_is_published_to_and_promoted_from(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "rc1"), label="rc")
    prepared = release.prepare(stores, "stage", "release candidate", source="rc")
    assert prepared.manifest is not None and prepared.manifest.source == "rc"


# 2. Rollback is safe to repeat


@pytest.fixture
def rolled_back_once(stores: Stores) -> Stores:
    """stage: v1 good, v2 bad, v3 a rollback to v1's images."""
    release.publish(stores, "api", image("api", "good"))
    release.apply(stores, "stage", "good")
    release.publish(stores, "api", image("api", "bad"))
    release.apply(stores, "stage", "bad")
    release.rollback(stores, "stage", "bad broke search")
    return stores


def test_a_rollback_records_the_version_it_reverts(rolled_back_once: Stores) -> None:
    manifest = views.show(rolled_back_once, "stage", 3).manifest
    assert manifest.source == "v1" and manifest.reverts == 2


def test_a_repeated_rollback_does_nothing(rolled_back_once: Stores) -> None:
    again = release.rollback(rolled_back_once, "stage", "the same incident, again")
    assert again.manifest is None and again.result is None and again.target.name == "v1"
    assert manifest_keys("stage") == ["v1.json", "v2.json", "v3.json"]
    assert ssm_image("stage", "api") == image("api", "good")


def test_a_rollback_to_the_images_that_run_does_nothing(rolled_back_once: Stores) -> None:
    again = release.rollback(rolled_back_once, "stage", "to v1 again", to=1)
    assert again.manifest is None
    assert manifest_keys("stage") == ["v1.json", "v2.json", "v3.json"]


def test_a_reverted_version_is_never_a_default_rollback_target(rolled_back_once: Stores) -> None:
    stores = rolled_back_once
    release.publish(stores, "api", image("api", "fixed"))
    release.apply(stores, "stage", "fixed")  # v4
    rolled = release.rollback(stores, "stage", "fixed is not")
    assert rolled.target.name == "v3"  # v1's images, not v2's
    assert ssm_image("stage", "api") == image("api", "good")


def test_a_rollback_to_a_version_that_never_ran_is_refused(stores: Stores) -> None:
    """A rollback goes back to what ran: a manifest that never did (prepared, or held by a
    release rule) is deployed with `deploy --version`, which the rules judge."""
    release.publish(stores, "api", image("api", "good"))
    release.apply(stores, "stage", "good")
    release.publish(stores, "api", image("api", "untried"))
    release.prepare(stores, "stage", "untried")  # v2
    with pytest.raises(BadInput, match=r"stage never ran v2 .*deploy --env stage --version v2"):
        release.rollback(stores, "stage", "not really a rollback", to=2)
    assert manifest_keys("stage") == ["v1.json", "v2.json"]
    assert ssm_image("stage", "api") == image("api", "good")


def test_history_marks_reverted_versions(rolled_back_once: Stores) -> None:
    entries = {entry.manifest.name: entry for entry in views.history(rolled_back_once, "stage")}
    assert entries["v2"].reverted_by == 3
    assert entries["v1"].reverted_by is None and entries["v3"].reverted_by is None
    assert entries["v2"].to_document()["reverted_by"] == "v3"


def test_a_reverted_version_deployed_again_is_no_longer_marked_reverted(
    rolled_back_once: Stores,
) -> None:
    deploy.deploy(rolled_back_once, "stage", 2)  # v2 back on purpose, after v3 reverted it
    entries = {entry.manifest.name: entry for entry in views.history(rolled_back_once, "stage")}
    assert entries["v2"].reverted_by is None
    assert views.show(rolled_back_once, "stage", 2).reverted_by is None


def test_a_rollback_deployed_again_after_the_reverted_version_came_back_reverts_it_again(
    rolled_back_once: Stores,
) -> None:
    deploy.deploy(rolled_back_once, "stage", 2)  # v2 back
    deploy.deploy(rolled_back_once, "stage", 3)  # and out again, by its rollback
    assert views.show(rolled_back_once, "stage", 2).reverted_by == 3


def test_history_leaves_the_changes_unknown_after_a_missing_manifest(
    rolled_back_once: Stores,
) -> None:
    boto3.client("s3", region_name=REGION).delete_object(
        Bucket=BUCKET, Key=f"{PROJECT}/release_manifests/stage/v2.json"
    )
    entries = {entry.version: entry for entry in views.history(rolled_back_once, "stage")}
    assert entries[3].changes is None  # not compared with v1, which it did not follow


# 3. No duplicate manifests from retries


def test_a_retry_after_a_failed_apply_reuses_its_manifest(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    with pytest.raises(TerraformFailed):
        release.apply(stores, "stage", "first", options=DeployOptions(terraform=FailsToApply()))
    prepared, result = release.apply(stores, "stage", "first, retried")
    assert prepared.reused and prepared.manifest is not None and prepared.manifest.name == "v1"
    assert result is not None and result.deployment is not None
    assert result.deployment.outcome == "succeeded"
    assert manifest_keys("stage") == ["v1.json"]


def test_a_retry_after_a_failed_rollback_reuses_its_manifest(stores: Stores) -> None:
    for tag in ("good", "bad"):
        release.publish(stores, "api", image("api", tag))
        release.apply(stores, "stage", tag)
    with pytest.raises(TerraformFailed):
        release.rollback(
            stores, "stage", "bad broke search", options=DeployOptions(terraform=FailsToApply())
        )
    said = io.StringIO()
    retried = "bad broke search, retried"
    announce = DeployOptions(
        announce=lambda plan: output.intent(output.console(said), plan, False, retried)
    )
    rolled = release.rollback(stores, "stage", retried, options=announce)
    assert said.getvalue().splitlines()[:2] == [
        "Rolling stage back to v1 as v3 (now v2): bad broke search",
        "  v3 already held these images and never ran: it keeps its own reason",
    ]
    assert rolled.manifest is not None and rolled.manifest.name == "v3"
    assert rolled.manifest.reverts == 2
    assert manifest_keys("stage") == ["v1.json", "v2.json", "v3.json"]
    assert ssm_image("stage", "api") == image("api", "good")


def test_plan_only_twice_writes_one_manifest_that_apply_reuses(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    for _ in range(2):
        release.apply(stores, "stage", "look first", options=DeployOptions(plan_only=True))
    prepared, _ = release.apply(stores, "stage", "now")
    assert prepared.reused
    assert manifest_keys("stage") == ["v1.json"]


def test_force_writes_a_new_manifest_even_when_one_could_be_reused(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    release.prepare(stores, "stage", "first")
    prepared = release.prepare(stores, "stage", "again", force=True)
    assert not prepared.reused and prepared.manifest is not None
    assert manifest_keys("stage") == ["v1.json", "v2.json"]


def test_a_manifest_that_once_ran_is_not_reused(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "one")
    release.publish(stores, "api", image("api", "two"))
    release.apply(stores, "stage", "two")
    deploy.deploy(stores, "stage", 1)  # back on v1 by hand; v2 ran once
    prepared = release.prepare(stores, "stage", "two again")
    assert not prepared.reused and prepared.manifest is not None
    assert prepared.manifest.name == "v3"


def test_apply_with_an_image_missing_from_ecr_writes_nothing(stores: Stores) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    url = push_image(ecr, "api", "one")
    release.publish(stores, "api", url)
    ecr.batch_delete_image(repositoryName="api", imageIds=[{"imageTag": "one"}])
    with pytest.raises(ImagesMissing):
        release.apply(stores, "stage", "expired")
    assert manifest_keys("stage") == []
