"""Guarantee 6: every object read from S3 is checked; a corrupted or hand-edited one is reported
with its key and not used."""

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Cli
from tests.support.assertions import assert_refused, snapshot
from tests.support.project import BUCKET, image
from tf_release.flows import release


@pytest.fixture
def deployed(cli: Cli) -> Cli:
    stores = cli.stores()
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "one")
    return cli


def edit(cli: Cli, key: str, change: Callable[[dict[str, Any]], object]) -> None:
    s3 = cli.client("s3")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    change(document)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())


def record_key(cli: Cli) -> str:
    listed = cli.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="catalogue/deployments/stage/")
    [item] = listed["Contents"]
    return item["Key"]


def test_manifests_carry_the_sha256_of_their_canonical_json(deployed: Cli) -> None:
    key = "catalogue/release_manifests/stage/v1.json"
    document = json.loads(deployed.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert len(document["sha256"]) == 64


def test_a_hand_edited_manifest_is_refused_by_every_reader(deployed: Cli) -> None:
    key = "catalogue/release_manifests/stage/v1.json"
    edit(deployed, key, lambda d: d.update(reason="rewritten history"))
    assert_refused(
        deployed, ["show", "-e", "stage", "v1"], f"s3://{BUCKET}/{key}: checksum mismatch"
    )
    assert_marked_in_history(deployed, f"s3://{BUCKET}/{key}: checksum mismatch")


def assert_marked_in_history(cli: Cli, message: str) -> None:
    """history shows the rest, marks the manifest it cannot use, then fails naming it."""
    before = snapshot(cli)
    result = cli.run("history", "-e", "stage")
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"tf-release: error: {message}"), line
    [document] = json.loads(cli.run("history", "-e", "stage", "--json").stdout)
    assert document["version"] == "v1" and document["broken"].startswith(message)
    assert snapshot(cli) == before


def copy(cli: Cli, source: str, target: str) -> None:
    cli.client("s3").copy_object(
        Bucket=BUCKET, Key=target, CopySource={"Bucket": BUCKET, "Key": source}
    )


def test_a_manifest_copied_to_another_version_is_refused(deployed: Cli) -> None:
    key = "catalogue/release_manifests/stage/v9.json"
    copy(deployed, "catalogue/release_manifests/stage/v1.json", key)
    assert_refused(
        deployed,
        ["show", "-e", "stage", "v9"],
        f"s3://{BUCKET}/{key} holds catalogue/stage v1, not what its key names",
    )


def test_a_manifest_copied_to_another_environment_is_refused(deployed: Cli) -> None:
    key = "catalogue/release_manifests/prod/v1.json"
    copy(deployed, "catalogue/release_manifests/stage/v1.json", key)
    assert_refused(
        deployed,
        ["deploy", "-e", "prod", "--version", "v1", "--yes"],
        f"s3://{BUCKET}/{key} holds catalogue/stage v1",
    )


def test_a_manifest_without_its_checksum_is_refused(deployed: Cli) -> None:
    key = "catalogue/release_manifests/stage/v1.json"

    def rewrite(document: dict[str, Any]) -> None:
        document["images"]["api"] = image("api", "never-ran")
        del document["sha256"]

    edit(deployed, key, rewrite)
    assert_marked_in_history(deployed, f"s3://{BUCKET}/{key}: ")
    assert_refused(deployed, ["show", "-e", "stage", "v1"], "'sha256' is a required property")


def test_a_corrupted_deployment_record_is_reported_with_its_key(deployed: Cli) -> None:
    key = record_key(deployed)
    edit(deployed, key, lambda d: d.update(outcome="splendid"))
    assert_refused(
        deployed, ["status", "-e", "stage", "--at", "2999-01-01T00:00Z"], f"s3://{BUCKET}/{key}: "
    )


def test_a_corrupted_environment_state_is_reported_with_its_key(deployed: Cli) -> None:
    key = "catalogue/environments/stage/state.json"
    deployed.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"{not json")
    status = deployed.run("status")  # the other environments are still shown
    assert status.returncode == 1 and status.stdout.splitlines()[1].startswith("prod ")
    assert f"s3://{BUCKET}/{key}: not valid JSON" in status.stderr
    assert_refused(deployed, ["prepare", "-e", "stage", "-r", "x"], f"s3://{BUCKET}/{key}")


def test_every_object_is_written_with_server_side_encryption(deployed: Cli) -> None:
    s3 = deployed.client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len(keys) == 5  # manifest, state, deployment record, the two indexes
    for key in keys:
        assert s3.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "AES256"
