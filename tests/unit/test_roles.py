"""Per-environment `role_arn`: an environment's image pointers live in its role's account."""

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support.project import BUCKET, CONFIG, PROJECT, REGION, image
from tests.unit.test_ecs_rollouts import service, task_definition
from tf_release.flows import release
from tf_release.flows.drift import verify
from tf_release.model.config import load_config
from tf_release.model.errors import BadInput
from tf_release.stores.bundle import Stores, open_stores
from tf_release.stores.iam import least_privilege_policy, role_policy

PROD_ACCOUNT = "222222222222"
PROD_ROLE = f"arn:aws:iam::{PROD_ACCOUNT}:role/release"
WITH_ROLE = CONFIG.replace(
    '[environments.prod]\npromote_from = "stage"\n',
    f'[environments.prod]\npromote_from = "stage"\nrole_arn = "{PROD_ROLE}"\n',
)


def ssm_in(account: str | None) -> object:
    """An SSM client in the caller's account (None) or, through the prod role, prod's."""
    return client_in("ssm", account)


def client_in(service: str, account: str | None) -> Any:
    if account is None:
        return boto3.client(service, region_name=REGION)
    sts = boto3.client("sts", region_name=REGION)
    credentials = sts.assume_role(RoleArn=PROD_ROLE, RoleSessionName="test")["Credentials"]
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def parameter_names(client: object) -> list[str]:
    found = client.describe_parameters()["Parameters"]  # type: ignore[attr-defined]
    return sorted(parameter["Name"] for parameter in found)


@pytest.fixture
def role_stores(tmp_path: Path) -> Iterator[Stores]:
    path = tmp_path / "tf-release.toml"
    path.write_text(WITH_ROLE)
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield open_stores(load_config(path))


def test_an_environment_with_a_role_keeps_its_pointers_in_the_role_account(
    role_stores: Stores,
) -> None:
    release.publish(role_stores, "api", image("api", "one"))
    release.apply(role_stores, "stage", "first")
    release.apply(role_stores, "prod", "promote")
    assert parameter_names(ssm_in(PROD_ACCOUNT)) == [
        f"/{PROJECT}/image_ids/prod/api",
        f"/{PROJECT}/release_version/prod",
    ]
    assert f"/{PROJECT}/image_ids/prod/api" not in parameter_names(ssm_in(None))


def test_promoting_from_an_environment_with_a_role_reads_through_that_role(
    role_stores: Stores, tmp_path: Path
) -> None:
    chained = tmp_path / "chained.toml"
    chained.write_text(WITH_ROLE + '\n[environments.dr]\npromote_from = "prod"\n')
    stores = open_stores(load_config(chained))
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "first")
    release.apply(stores, "prod", "promote")
    prepared = release.prepare(stores, "dr", "copy prod")
    assert prepared.manifest is not None
    assert prepared.manifest.images == {"api": image("api", "one")}


def test_records_name_the_caller_not_the_role(role_stores: Stores) -> None:
    release.publish(role_stores, "api", image("api", "one"))
    release.apply(role_stores, "stage", "first")
    _, result = release.apply(role_stores, "prod", "promote")
    assert result is not None and result.deployment is not None
    assert result.deployment.started_by == "arn:aws:sts::123456789012:user/moto"


def test_the_role_is_assumed_once_and_only_when_its_environment_is_touched(
    role_stores: Stores,
) -> None:
    assert role_stores.session is not None
    release.publish(role_stores, "api", image("api", "one"))
    release.apply(role_stores, "stage", "first")
    assert role_stores.session.requests["sts.AssumeRole"] == 0
    release.apply(role_stores, "prod", "promote")
    release.publish(role_stores, "api", image("api", "two"))
    release.apply(role_stores, "stage", "second")
    release.apply(role_stores, "prod", "again")
    assert role_stores.session.requests["sts.AssumeRole"] == 1


def test_the_caller_policy_may_assume_exactly_the_configured_roles(tmp_path: Path) -> None:
    path = tmp_path / "tf-release.toml"
    path.write_text(WITH_ROLE)
    statements = least_privilege_policy(load_config(path))["Statement"]
    [assume] = [s for s in statements if s["Sid"] == "AssumeEnvironmentRoles"]
    assert assume["Action"] == ["sts:AssumeRole"] and assume["Resource"] == [PROD_ROLE]


def test_without_roles_the_caller_policy_assumes_none(tmp_path: Path) -> None:
    path = tmp_path / "tf-release.toml"
    path.write_text(CONFIG)
    statements = least_privilege_policy(load_config(path))["Statement"]
    assert all(s["Sid"] != "AssumeEnvironmentRoles" for s in statements)


def test_the_role_policy_covers_only_its_environment_parameters(tmp_path: Path) -> None:
    path = tmp_path / "tf-release.toml"
    path.write_text(WITH_ROLE)
    [statement] = role_policy(load_config(path), "prod")["Statement"]
    assert statement["Resource"] == [
        f"arn:aws:ssm:{REGION}:*:parameter/{PROJECT}/image_ids/prod",
        f"arn:aws:ssm:{REGION}:*:parameter/{PROJECT}/image_ids/prod/*",
        f"arn:aws:ssm:{REGION}:*:parameter/{PROJECT}/release_version/prod",
    ]
    with pytest.raises(BadInput, match="environment 'stage' has no role_arn"):
        role_policy(load_config(path), "stage")


def test_the_ecs_services_of_an_environment_with_a_role_are_read_in_its_account(
    role_stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # services finish rolling out
    release.publish(role_stores, "api", image("api", "one"))
    release.apply(role_stores, "stage", "first")
    release.apply(role_stores, "prod", "promote")
    ecs = client_in("ecs", PROD_ACCOUNT)
    api = service(ecs, "api", task_definition(ecs, "api", {"api": image("api", "one")}))
    prod = replace(role_stores.config.environments["prod"], ecs_services=(api,))
    environments = {**role_stores.config.environments, "prod": prod}
    stores = replace(role_stores, config=replace(role_stores.config, environments=environments))
    checked = verify(stores, "prod", ecs=True)
    assert checked.differences == () and "ecs" in checked.checked


def test_the_role_policy_may_read_the_ecs_services_of_its_environment(tmp_path: Path) -> None:
    path = tmp_path / "tf-release.toml"
    path.write_text(WITH_ROLE.replace("role_arn =", 'ecs_services = ["main/api"]\nrole_arn ='))
    config = load_config(path)
    sids = [statement["Sid"] for statement in role_policy(config, "prod")["Statement"]]
    assert sids == ["ImagePointers", "CheckEcsRollouts"]
    caller = [statement["Sid"] for statement in least_privilege_policy(config)["Statement"]]
    assert "CheckEcsRollouts" not in caller
