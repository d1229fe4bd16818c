"""Guarantee 9: the commands work under exactly the actions of `tf-release iam-policy`, with S3
scoped to the project's objects as the policy says (moto checks actions everywhere, and resources
for S3 only, so the SSM, ECR and STS statements are tried with their actions on "*")."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.conftest import Cli
from tests.support.iam import as_moto_checks_it, enforce_iam, user_with
from tests.support.project import image, push_image
from tf_release.flows.gates import check_rollouts
from tf_release.model.errors import AwsFailure
from tf_release.model.progress import Quiet
from tf_release.stores.aws import AwsSession
from tf_release.stores.ecs import EcsServices

pytestmark = pytest.mark.moto_only("IAM enforcement is moto's /moto-api/reset-auth")


@pytest.fixture
def enforced(cli: Cli) -> Iterator[Cli]:
    yield cli
    enforce_iam(cli, float("inf"))  # the session's moto server is shared: stop enforcing


def test_the_whole_lifecycle_runs_under_the_policy(enforced: Cli) -> None:
    policy = json.loads(enforced.ok("iam-policy"))
    enforced.env.update(user_with(enforced, as_moto_checks_it(policy)))
    enforce_iam(enforced, 0)

    for name in ("api", "worker"):
        enforced.ok("publish", name, image(name, "one"))
    enforced.ok("apply", "-e", "stage", "-r", "one", "--yes")
    enforced.ok("apply", "-e", "prod", "-r", "promote", "--yes")
    for name in ("api", "worker"):
        enforced.ok("publish", name, image(name, "two"))
    enforced.ok("prepare", "-e", "stage", "-r", "two", "--image", "api")
    enforced.ok("deploy", "-e", "stage", "--yes")
    enforced.ok("rollback", "-e", "stage", "-r", "back", "--yes")
    enforced.ok("history", "-e", "stage")
    enforced.ok("show", "-e", "stage", "v1")
    enforced.ok("status", "--at", "2999-01-01T00:00Z")
    enforced.ok("unlock", "-e", "stage", "--yes")
    [status, _] = json.loads(enforced.ok("status", "--json"))
    assert status["version"] == "v3"


def test_iam_is_really_enforced_an_action_less_is_denied(enforced: Cli) -> None:
    policy = as_moto_checks_it(json.loads(enforced.ok("iam-policy")))
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "ssm:PutParameter"]
    enforced.env.update(user_with(enforced, policy))
    enforce_iam(enforced, 0)
    result = enforced.run("publish", "api", image("api", "one"))
    assert result.returncode == 1
    assert "AWS denied access while writing /catalogue/image_ids/latest/api" in result.stderr


def test_objects_outside_the_project_are_denied(enforced: Cli) -> None:
    policy = as_moto_checks_it(json.loads(enforced.ok("iam-policy")))
    enforced.env.update(user_with(enforced, policy))
    enforce_iam(enforced, 0)
    config = enforced.env["TF_RELEASE_CONFIG"]
    with open(config) as file:
        text = file.read()
    with open(config, "w") as file:
        file.write(text.replace('project = "catalogue"', 'project = "other"'))
    result = enforced.run("status")
    assert result.returncode == 1 and "AWS denied access while reading" in result.stderr


def test_the_policy_is_scoped_to_the_project_bucket_and_environments(cli: Cli) -> None:
    policy = json.loads(cli.ok("iam-policy"))
    resources = json.dumps(policy)
    assert "arn:aws:s3:::acme-releases/catalogue/release_manifests/prod/*" in resources
    assert "arn:aws:ssm:eu-west-1:*:parameter/catalogue/image_ids/latest/*" in resources
    assert "arn:aws:ssm:eu-west-1:*:parameter/catalogue/release_version/stage" in resources
    assert '"Resource": "*"' not in resources.replace(
        '"Action": ["sts:GetCallerIdentity"], "Resource": "*"', ""
    )


PROD_ROLE = "arn:aws:iam::222222222222:role/release"


def role_in_prod_account(cli: Cli, policy: dict[str, object]) -> None:
    """The prod account's release role, trusting the caller's account, with `policy`."""
    iam = boto3.client(
        "iam", region_name="eu-west-1", endpoint_url=cli.server.url,
    )  # fmt: skip

    def in_prod(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = "222222222222"

    iam.meta.events.register("before-sign.iam.*", in_prod)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="release", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName="release", PolicyName="tf-release", PolicyDocument=json.dumps(policy)
    )


def test_an_environment_role_works_under_the_two_policies_printed(enforced: Cli) -> None:
    enforced.write_config(
        '[environments.stage]\npromote_from = "latest"\n\n'
        f'[environments.prod]\npromote_from = "stage"\nrole_arn = "{PROD_ROLE}"\n'
    )
    caller = json.loads(enforced.ok("iam-policy"))
    role = json.loads(enforced.ok("iam-policy", "--role", "prod"))
    enforced.env.update(user_with(enforced, as_moto_checks_it(caller)))
    role_in_prod_account(enforced, as_moto_checks_it(role))
    enforce_iam(enforced, 0)

    enforced.ok("publish", "api", image("api", "one"))
    enforced.ok("apply", "-e", "stage", "-r", "one", "--yes")
    enforced.ok("apply", "-e", "prod", "-r", "promote", "--yes")
    [prod] = json.loads(enforced.ok("status", "-e", "prod", "--json"))
    assert prod["version"] == "v1"


def test_without_the_role_policy_the_environment_is_denied(enforced: Cli) -> None:
    enforced.write_config(
        '[environments.stage]\npromote_from = "latest"\n\n'
        f'[environments.prod]\npromote_from = "stage"\nrole_arn = "{PROD_ROLE}"\n'
    )
    caller = json.loads(enforced.ok("iam-policy"))
    enforced.env.update(user_with(enforced, as_moto_checks_it(caller)))
    unrelated = {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets"], "Resource": "*"}
    role_in_prod_account(enforced, {"Version": "2012-10-17", "Statement": [unrelated]})
    enforce_iam(enforced, 0)
    enforced.ok("publish", "api", image("api", "one"))
    enforced.ok("apply", "-e", "stage", "-r", "one", "--yes")
    result = enforced.run("apply", "-e", "prod", "-r", "promote", "--yes")
    assert result.returncode == 1
    assert "AWS denied access while reading /catalogue/image_ids/prod" in result.stderr


ECS_STAGE = '[environments.stage]\npromote_from = "latest"\necs_services = ["main/api"]\n'


def test_the_ecs_statement_is_there_only_when_an_environment_lists_services(cli: Cli) -> None:
    without = json.loads(cli.ok("iam-policy"))
    cli.write_config(ECS_STAGE)
    with_services = json.loads(cli.ok("iam-policy"))
    assert "ecs:" not in json.dumps(without)
    [ecs] = [s for s in with_services["Statement"] if "ecs:DescribeServices" in s["Action"]]
    assert ecs == {
        "Sid": "CheckEcsRollouts",
        "Effect": "Allow",
        "Action": ["ecs:DescribeServices", "ecs:DescribeTaskDefinition"],
        "Resource": "*",
    }


def ecs_rollout_under(enforced: Cli, policy: dict[str, Any], monkeypatch: Any) -> list[Any]:
    """main/api rolled out (set up as admin), then checked in-process as a user with `policy`."""
    ecs = enforced.client("ecs")
    ecs.create_cluster(clusterName="main")
    api = {"name": "api", "image": image("api", "one"), "memory": 128}
    registered = ecs.register_task_definition(family="api", containerDefinitions=[api])
    ecs.create_service(  # nothing to run: moto's server says COMPLETED
        cluster="main",
        serviceName="api",
        taskDefinition=registered["taskDefinition"]["taskDefinitionArn"],
        desiredCount=0,
    )
    for name, value in user_with(enforced, policy).items():
        monkeypatch.setenv(name, value)
    enforce_iam(enforced, 0)
    return check_rollouts(
        EcsServices(AwsSession(region="eu-west-1")),
        ["main/api"],
        {"api": image("api", "one")},
        timeout=1,
        progress=Quiet(),
    )


def test_the_ecs_rollout_check_runs_under_the_policy(
    enforced: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    enforced.write_config(ECS_STAGE)
    policy = as_moto_checks_it(json.loads(enforced.ok("iam-policy")))
    [check] = ecs_rollout_under(enforced, policy, monkeypatch)
    assert check.ok


def test_the_ecs_rollout_check_is_denied_without_describe_task_definition(
    enforced: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    enforced.write_config(ECS_STAGE)
    policy = as_moto_checks_it(json.loads(enforced.ok("iam-policy")))
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "ecs:DescribeTaskDefinition"]
    with pytest.raises(AwsFailure, match="AWS denied access while describing ECS task definition"):
        ecs_rollout_under(enforced, policy, monkeypatch)


def test_verify_runs_under_the_policy_reading_ssm_s3_ecr_and_ecs(enforced: Cli) -> None:
    """`verify --ecs` needs nothing beyond the printed policy: SSM and S3 reads, ECR
    DescribeImages for the deployed images, ECS describes for the services."""
    enforced.write_config(ECS_STAGE)
    url = push_image(enforced.client("ecr"), "api", "1.0")
    [pushed] = enforced.client("ecr").describe_images(repositoryName="api")["imageDetails"]
    pinned = f"{url.rsplit(':', 1)[0]}@{pushed['imageDigest']}"  # what the deploy puts in SSM
    ecs = enforced.client("ecs")
    ecs.create_cluster(clusterName="main")
    registered = ecs.register_task_definition(
        family="api", containerDefinitions=[{"name": "api", "image": pinned, "memory": 128}]
    )
    ecs.create_service(  # nothing to run: moto's server says COMPLETED
        cluster="main",
        serviceName="api",
        taskDefinition=registered["taskDefinition"]["taskDefinitionArn"],
        desiredCount=0,
    )
    policy = json.loads(enforced.ok("iam-policy"))
    enforced.env.update(user_with(enforced, as_moto_checks_it(policy)))
    enforce_iam(enforced, 0)

    enforced.ok("publish", "api", url)
    enforced.ok("apply", "-e", "stage", "-r", "one", "--yes")
    verified = enforced.run("verify", "-e", "stage", "--ecs", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["checked"] == ["ssm", "pointer", "ecr", "ecs"]
