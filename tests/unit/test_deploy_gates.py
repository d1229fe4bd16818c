"""A deploy counts only once its gates pass (verification commands, the ECS rollout check), and
with --atomic a failed apply or gate converges back to what ran before (issue #12)."""

import json
import sys
from dataclasses import replace

import boto3
import pytest

from tests.support.project import PROJECT, REGION, image
from tf_release.flows import deploy, release, views
from tf_release.flows.deploy import DeployOptions
from tf_release.model.errors import GateFailed, TerraformFailed
from tf_release.stores.bundle import Stores
from tf_release.terraform.runner import PlanSummary

PASSES = [sys.executable, "-c", "print('smoke ok')"]
FAILS = [sys.executable, "-c", "import sys; print('checkout is down'); sys.exit(1)"]


def configure(stores: Stores, **settings: object) -> None:
    """Give stage these settings (verify, atomic, ecs_services, …)."""
    stage = replace(stores.config.environments["stage"], **settings)
    stores.config = replace(
        stores.config, environments={**stores.config.environments, "stage": stage}
    )


def ssm_image(name: str) -> str:
    ssm = boto3.client("ssm", region_name=REGION)
    return ssm.get_parameter(Name=f"/{PROJECT}/image_ids/stage/{name}")["Parameter"]["Value"]


def newest_record(stores: Stores) -> deploy.Deployment:
    return stores.deployments.get(next(iter(stores.deployments.entries("stage"))))


class Counting:
    """A Terraform run that counts its plans and applies; `fail_applies` fail in turn."""

    def __init__(self, *fail_applies: bool) -> None:
        self.fail_applies = list(fail_applies)
        self.plans = self.applies = 0

    def plan(self) -> PlanSummary:
        self.plans += 1
        return PlanSummary(change=1)

    def apply(self) -> None:
        self.applies += 1
        if self.fail_applies and self.fail_applies.pop(0):
            raise TerraformFailed("terraform apply failed: boom")


@pytest.fixture
def runs_one(stores: Stores) -> Stores:
    """stage runs v1 (api "one"); api "two" is published."""
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "one")
    release.publish(stores, "api", image("api", "two"))
    return stores


def test_verification_commands_run_after_the_deploy_and_are_recorded(runs_one: Stores) -> None:
    configure(runs_one, verify=(tuple(PASSES),))
    _, result = release.apply(runs_one, "stage", "two")
    assert result is not None and result.deployment is not None
    [check] = result.deployment.checks
    assert check["ok"] is True and "smoke ok" in check["check"]
    assert result.to_document()["checks"] == [check]
    assert newest_record(runs_one).checks == (check,)


def test_a_failing_verification_fails_the_deploy_in_phase_verify(runs_one: Stores) -> None:
    configure(runs_one, verify=(tuple(PASSES), tuple(FAILS)))
    with pytest.raises(GateFailed, match=r"failed \(exit 1\): checkout is down$"):
        release.apply(runs_one, "stage", "two")
    record = newest_record(runs_one)
    assert (record.outcome, record.phase) == ("failed", "verify")
    assert [check["ok"] for check in record.checks] == [True, False]
    assert ssm_image("api") == image("api", "one")  # put back, as after any failure
    assert runs_one.states.get("stage")[0].deployed.version == 1  # type: ignore[union-attr]


def test_skip_verify_runs_no_command_and_says_so_in_the_record(runs_one: Stores) -> None:
    configure(runs_one, verify=(tuple(FAILS),))
    release.apply(runs_one, "stage", "emergency", options=DeployOptions(skip_verify=True))
    record = newest_record(runs_one)
    assert record.outcome == "succeeded" and record.skipped_verify and record.checks == ()


def test_atomic_converges_back_after_a_failed_verification(runs_one: Stores) -> None:
    configure(runs_one, verify=(tuple(FAILS),), atomic=True)
    terraform = Counting()
    with pytest.raises(GateFailed, match=r"; converged back: stage runs v1 again$"):
        release.apply(runs_one, "stage", "two", options=DeployOptions(terraform=terraform))
    assert (terraform.plans, terraform.applies) == (2, 2)  # the deploy, then the way back
    record = newest_record(runs_one)
    assert (record.rolled_back_to, record.convergence, record.phase) == (1, "succeeded", "verify")
    assert ssm_image("api") == image("api", "one")


def test_atomic_converges_back_after_a_failed_apply(runs_one: Stores) -> None:
    terraform = Counting(True)
    options = DeployOptions(terraform=terraform, atomic=True)
    with pytest.raises(TerraformFailed, match=r"boom; converged back: stage runs v1 again$"):
        release.apply(runs_one, "stage", "two", options=options)
    assert (terraform.plans, terraform.applies) == (2, 2)
    assert newest_record(runs_one).convergence == "succeeded"
    [stage] = views.status(runs_one, ["stage"])
    assert stage.last_attempt is not None and not stage.last_attempt.partly_applied


def test_a_failed_convergence_says_the_environment_needs_attention(runs_one: Stores) -> None:
    options = DeployOptions(terraform=Counting(True, True), atomic=True)
    with pytest.raises(
        TerraformFailed, match=r"converging back to v1 failed too .*needs attention"
    ):
        release.apply(runs_one, "stage", "two", options=options)
    record = newest_record(runs_one)
    assert (record.rolled_back_to, record.convergence) == (1, "failed")
    [stage] = views.status(runs_one, ["stage"])
    assert stage.last_attempt is not None and "needs attention" in stage.last_attempt.message
    assert stage.last_attempt.partly_applied  # between two versions: status names the fix


def test_no_atomic_overrides_the_environment_setting(runs_one: Stores) -> None:
    configure(runs_one, atomic=True)
    terraform = Counting(True)
    with pytest.raises(TerraformFailed) as failed:
        release.apply(
            runs_one, "stage", "two", options=DeployOptions(terraform=terraform, atomic=False)
        )
    assert "converge" not in str(failed.value) and terraform.applies == 1


def test_atomic_with_nothing_deployed_before_has_nothing_to_converge_to(stores: Stores) -> None:
    release.publish(stores, "api", image("api", "one"))
    options = DeployOptions(terraform=Counting(True), atomic=True)
    with pytest.raises(TerraformFailed, match="nothing was deployed to stage before"):
        release.apply(stores, "stage", "first", options=options)
    record = newest_record(stores)
    assert record.rolled_back_to is None and record.convergence is None


def test_a_failed_plan_is_not_converged(runs_one: Stores) -> None:
    class FailsToPlan(Counting):
        def plan(self) -> PlanSummary:
            raise TerraformFailed("terraform plan failed: syntax")

    with pytest.raises(TerraformFailed, match=r"syntax$"):
        release.apply(
            runs_one, "stage", "two", options=DeployOptions(terraform=FailsToPlan(), atomic=True)
        )
    assert newest_record(runs_one).phase == "plan"


def test_verification_commands_see_the_release_in_their_environment(
    runs_one: Stores, tmp_path: object
) -> None:
    show = [
        sys.executable,
        "-c",
        "import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
        "if k.startswith('TF_RELEASE_')}))",
        "{env}",
    ]
    configure(runs_one, verify=(tuple(show),))
    captured: list[str] = []

    class Lines:
        def write(self, text: str) -> int:
            captured.append(text)
            return len(text)

        def flush(self) -> None: ...

    from tf_release.terraform.processes import Output

    live = Output(Lines(), Lines())  # type: ignore[arg-type]
    _, result = release.apply(runs_one, "stage", "two", options=DeployOptions(live=live))
    seen = json.loads("".join(captured))
    assert seen["TF_RELEASE_ENV"] == "stage" and seen["TF_RELEASE_VERSION"] == "v2"
    assert seen["TF_RELEASE_PROJECT"] == PROJECT
    assert json.loads(seen["TF_RELEASE_IMAGES"]) == {"api": image("api", "two")}
    assert result is not None and result.deployment is not None
    assert seen["TF_RELEASE_DEPLOYMENT_ID"] == result.deployment.deployment_id


class RollsOut(Counting):
    """A Terraform run whose apply points ECS service main/api at a task definition running
    the api image SSM holds, as the example stack does."""

    def __init__(self, roll: bool = True) -> None:
        super().__init__()
        self.roll = roll

    def apply(self) -> None:
        super().apply()
        if self.roll:
            roll_out(ssm_image("api"))


def roll_out(url: str) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    definition = ecs.register_task_definition(
        family="api", containerDefinitions=[{"name": "api", "image": url, "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="main", service="api", taskDefinition=definition)


@pytest.fixture
def on_ecs(runs_one: Stores, monkeypatch: pytest.MonkeyPatch) -> Stores:
    """Service main/api runs v1's api image; stage checks it after each deploy."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")  # moto's rollouts complete at once
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="main")
    definition = ecs.register_task_definition(
        family="api",
        containerDefinitions=[{"name": "api", "image": image("api", "one"), "memory": 128}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster="main", serviceName="api", taskDefinition=definition, desiredCount=1)
    configure(runs_one, ecs_services=("main/api",))
    return runs_one


def test_the_ecs_check_passes_when_the_services_run_the_new_images(on_ecs: Stores) -> None:
    _, result = release.apply(on_ecs, "stage", "two", options=DeployOptions(terraform=RollsOut()))
    assert result is not None and result.deployment is not None
    [check] = result.deployment.checks
    assert check["check"] == "ecs main/api" and check["ok"] is True


def test_a_service_left_on_the_old_images_fails_the_deploy_and_atomic_converges(
    on_ecs: Stores,
) -> None:
    options = DeployOptions(terraform=RollsOut(roll=False), atomic=True)
    with pytest.raises(GateFailed, match=r"main/api.*; converged back: stage runs v1 again$"):
        release.apply(on_ecs, "stage", "two", options=options)
    record = newest_record(on_ecs)
    assert (record.phase, record.convergence) == ("ecs", "succeeded")
    assert record.checks[-1]["ok"] is False
