"""A botocore too old for conditional writes is refused in one line, not a failure per write.

botocore gave S3's PutObject `IfNoneMatch` in 1.35.10 and `IfMatch` in 1.35.69. Here the S3
model botocore loads loses `IfMatch`, as 1.35.68's lacks it; ci/floors (make floors) runs
`tf-release prepare` with botocore 1.35.68 itself installed."""

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import boto3
import botocore
import pytest
from botocore.loaders import Loader
from moto import mock_aws

from tests.support.project import BUCKET, REGION, ROOT, image
from tf_release.faces.cli import main
from tf_release.model.errors import AwsFailure
from tf_release.stores import aws
from tf_release.stores.aws import AwsSession

TOO_OLD = (
    "botocore 1.35.68 is too old: tf-release needs botocore >= 1.35.69 (conditional writes): "
    "pip install -U boto3"
)


@pytest.fixture
def botocore_1_35_68(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every botocore session made from here on loads an S3 model whose PutObject has no IfMatch."""
    load = Loader.load_service_model

    def without_if_match(
        self: Loader, service_name: str, type_name: str, api_version: Any = None
    ) -> Any:
        model = load(self, service_name, type_name, api_version)
        if service_name == "s3" and type_name == "service-2":
            model = copy.deepcopy(model)  # the loader caches the one it read
            del model["shapes"]["PutObjectRequest"]["members"]["IfMatch"]
        return model

    monkeypatch.setattr(Loader, "load_service_model", without_if_match)
    monkeypatch.setattr(botocore, "__version__", "1.35.68")


@pytest.mark.usefixtures("botocore_1_35_68")
def test_an_s3_client_without_conditional_writes_is_refused_in_one_line() -> None:
    with pytest.raises(AwsFailure) as raised:
        AwsSession(region=REGION).client("s3")
    assert str(raised.value) == TOO_OLD


@pytest.mark.usefixtures("botocore_1_35_68")
def test_other_clients_are_made_as_before() -> None:
    assert AwsSession(region=REGION).client("ssm").meta.service_model.service_name == "ssm"


def test_the_installed_botocore_has_conditional_writes() -> None:
    AwsSession(region=REGION).client("s3")


def run(*args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0)


def test_prepare_says_so_in_one_line_and_exits_1(
    botocore_1_35_68: None, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        config = ("--config", str(config_path))
        assert run(*config, "publish", "api", image("api", "1.0.0")) == 0  # SSM only
        capsys.readouterr()
        assert run(*config, "prepare", "--env", "stage", "--reason", "a release") == 1
    assert capsys.readouterr().err == f"tf-release: error: {TOO_OLD}\n"


def test_the_version_named_is_the_floor_pyproject_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [floor] = [
        found.group(1)
        for requirement in project["dependencies"]
        if (found := re.fullmatch(r"botocore>=([\d.]+)", requirement))
    ]
    assert floor == aws.BOTOCORE_NEEDED
