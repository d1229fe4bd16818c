"""`verify` (issue #12 §4) in-process: each way SSM, ECR or ECS can disagree with the deployed
manifest is one difference, and agreement is none."""

from dataclasses import replace
from typing import Any

import boto3
import pytest

from tests.support.project import REGION, image, push_image
from tests.support.scenes import holding_the_lock, released
from tests.unit.test_ecs_rollouts import service, task_definition
from tf_release.flows import release
from tf_release.flows.drift import Difference, verify
from tf_release.model.errors import BadInput
from tf_release.stores.bundle import Stores
from tf_release.terraform.runner import PlanSummary

API = "/catalogue/image_ids/stage/api"


def ssm() -> Any:
    return boto3.client("ssm", region_name=REGION)


def test_an_environment_as_deployed_has_no_differences(stores: Stores) -> None:
    released(stores)
    report = verify(stores, "stage")
    assert report.differences == () and not report.drifted
    assert report.version == 1 and report.checked == ("ssm", "pointer", "ecr")
    assert report.summary() == "stage agrees with its record (v1); checked ssm, pointer, ecr"


def test_a_hand_edited_image_is_a_change(stores: Stores) -> None:
    released(stores)
    ssm().put_parameter(Name=API, Value=image("api", "hand-edited"), Overwrite=True)
    assert verify(stores, "stage").differences == (
        Difference(
            "changed",
            "api",
            f"SSM holds {image('api', 'hand-edited')}, v1 has {image('api', 'one')}",
        ),
    )


def test_a_parameter_the_manifest_does_not_name_is_extra(stores: Stores) -> None:
    released(stores)
    ssm().put_parameter(
        Name="/catalogue/image_ids/stage/debug", Value=image("debug", "1"), Type="String"
    )
    report = verify(stores, "stage")
    [extra] = report.differences
    assert extra == Difference("extra", "debug", f"in SSM, not in v1: {image('debug', '1')}")
    assert extra.line() == f"+ debug: in SSM, not in v1: {image('debug', '1')}"
    assert report.notes == (  # else it is reported at every verify, with no way out
        "a deploy never deletes a parameter no release wrote: remove it with `aws ssm "
        "delete-parameters --names /catalogue/image_ids/stage/debug`, or publish the image and "
        "release it",
    )


def test_a_deleted_parameter_is_missing(stores: Stores) -> None:
    released(stores)
    ssm().delete_parameter(Name="/catalogue/image_ids/stage/worker")
    [missing] = verify(stores, "stage").differences
    assert missing.line() == f"- worker: missing from SSM (v1 has {image('worker', 'one')})"


def test_a_value_that_is_no_image_url_is_a_change_read_as_it_is(stores: Stores) -> None:
    released(stores)
    ssm().put_parameter(Name=API, Value="not an image", Overwrite=True)
    [changed] = verify(stores, "stage").differences
    assert changed.detail == (
        f"SSM holds 'not an image' (not a valid image URL), v1 has {image('api', 'one')}"
    )


def test_a_version_pointer_that_disagrees_is_a_difference(stores: Stores) -> None:
    released(stores)
    pointer = "/catalogue/release_version/stage"
    ssm().put_parameter(Name=pointer, Value='{"version": "v7", "images": 1}', Overwrite=True)
    [wrong] = verify(stores, "stage").differences
    assert wrong.line() == "~ release_version: SSM says v7 with 1 image(s), v1 has 2"


def test_a_deployed_image_expired_from_ecr_is_a_difference(stores: Stores) -> None:
    ecr = boto3.client("ecr", region_name=REGION)
    for name in ("api", "worker"):
        release.publish(stores, name, push_image(ecr, name, "1.3"))
    release.apply(stores, "stage", "1.3")
    ecr.batch_delete_image(repositoryName="api", imageIds=[{"imageTag": "1.3"}])
    [expired] = verify(stores, "stage").differences
    url = stores.states.get("stage")[0].held_images["api"]  # pinned to its digest
    assert expired.line() == f"! ecr api: {url} no longer exists in ECR"


def test_nothing_deployed_and_nothing_in_ssm_agrees(stores: Stores) -> None:
    report = verify(stores, "stage")
    assert report.version is None and not report.drifted
    assert report.notes == ("nothing is deployed to stage: there is no record to compare with",)


def test_nothing_deployed_makes_each_parameter_a_difference(stores: Stores) -> None:
    ssm().put_parameter(Name=API, Value=image("api", "1"), Type="String")
    [extra] = verify(stores, "stage").differences
    assert extra.line() == f"+ api: in SSM, though nothing is deployed: {image('api', '1')}"


def test_verify_compares_while_a_deploy_holds_the_lock_and_says_so(stores: Stores) -> None:
    holding_the_lock(stores)  # v1 runs (api "one"); the deploy of v2 died in plan, locked
    report = verify(stores, "stage")
    assert report.lock is not None and report.notes[0].startswith("a deploy is in progress")
    assert [d.line() for d in report.differences] == [
        f"~ api: SSM holds {image('api', 'two')}, v1 has {image('api', 'one')}",
        "~ release_version: SSM says v2 with 1 image(s), v1 has 1",
    ]
    assert stores.states.get("stage")[0].lock == report.lock  # left as it was


class Plans:
    def __init__(self, summary: PlanSummary) -> None:
        self.summary = summary

    def drift(self) -> PlanSummary:
        return self.summary


def test_each_resource_terraform_would_change_is_a_difference(stores: Stores) -> None:
    released(stores)
    plan = PlanSummary(change=1, resources=('aws_ecs_task_definition.service["api"] (update)',))
    report = verify(stores, "stage", terraform=Plans(plan))
    assert [d.line() for d in report.differences] == [
        '~ terraform aws_ecs_task_definition.service["api"]: update'
    ]
    assert report.checked[-1] == "terraform"


def with_services(stores: Stores, services: tuple[str, ...]) -> Stores:
    stage = replace(stores.config.environments["stage"], ecs_services=services)
    environments = {**stores.config.environments, "stage": stage}
    return replace(stores, config=replace(stores.config, environments=environments))


def test_an_ecs_service_running_other_images_is_a_difference(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # services finish rolling out
    ecs = boto3.client("ecs", region_name=REGION)
    released(stores)
    api = service(ecs, "api", task_definition(ecs, "api", {"api": image("api", "old")}))
    worker = service(
        ecs, "worker", task_definition(ecs, "worker", {"worker": image("worker", "one")})
    )
    [runs_other] = verify(with_services(stores, (api, worker)), "stage", ecs=True).differences
    assert runs_other.line() == (
        f"~ ecs main/api: container api has {image('api', 'old')}, not {image('api', 'one')}; "
        f"runs api:1 (api={image('api', 'old')})"
    )


def test_ecs_without_services_is_bad_input(stores: Stores) -> None:
    with pytest.raises(BadInput, match=r"stage has no ecs_services in .*: --ecs has nothing"):
        verify(stores, "stage", ecs=True)
