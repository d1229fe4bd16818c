"""What people see: tables, coloured diffs (never when piped or under NO_COLOR), JSON shapes."""

import json
import re

import pytest

from tests.conftest import Cli
from tests.support.project import BUCKET, image
from tests.support.scenes import failed_to_deploy, released
from tf_release import release

ESCAPE = "\x1b["


@pytest.fixture
def two_releases(cli: Cli) -> Cli:
    stores = cli.stores()
    released(stores, reason="first release")
    release.publish(stores, "api", image("api", "two"))
    return cli


def test_history_is_a_table_newest_first(two_releases: Cli) -> None:
    two_releases.ok("apply", "-e", "stage", "-r", "fix search", "--yes")
    lines = [line.rstrip() for line in two_releases.ok("history", "-e", "stage").splitlines()]
    assert lines[0].split() == [
        "version", "created", "by", "source", "reason", "changes", "deployments",
    ]  # fmt: skip
    assert re.match(
        r"^v2 +\S+Z +arn:aws:sts::123456789012:user/moto +latest +fix search +~api +succeeded",
        lines[1],
    )
    assert lines[2].startswith("v1 ")


def test_status_is_a_table_with_locks_explained_below(two_releases: Cli) -> None:
    lines = [line.rstrip() for line in two_releases.ok("status").splitlines()]
    assert lines[0].split() == ["environment", "version", "deployed", "by", "newest"]
    assert re.match(r"^stage +v1 +\S+Z +arn:aws:sts::123456789012:user/moto +v1$", lines[1])
    assert re.match(r"^prod +- +nothing deployed", lines[2])


def test_show_lists_the_facts_then_the_images(two_releases: Cli) -> None:
    lines = [line.rstrip() for line in two_releases.ok("show", "-e", "stage", "v1").splitlines()]
    assert "reason    first release" in lines
    assert re.match(rf"^api +{re.escape(image('api', 'one'))} +not pinned$", lines[-2])


def test_changes_are_coloured_on_a_terminal_only(two_releases: Cli) -> None:
    piped = two_releases.ok("diff", "-e", "stage")
    assert ESCAPE not in piped
    del two_releases.env["NO_COLOR"]
    two_releases.env["FORCE_COLOR"] = "1"  # rich's switch for "this is a terminal"
    coloured = two_releases.ok("diff", "-e", "stage")
    assert f"{ESCAPE}33m  ~ api: {image('api', 'one')} → {image('api', 'two')}" in coloured
    two_releases.env["NO_COLOR"] = "1"
    assert ESCAPE not in two_releases.ok("diff", "-e", "stage")


def test_json_shapes_are_stable(two_releases: Cli) -> None:
    [status, _] = json.loads(two_releases.ok("status", "--json"))
    assert set(status) == {
        "environment", "at", "version", "deployed_at", "deployed_by", "deployment_id",
        "images", "latest_version", "lock", "last_attempt", "overrides",
    }  # fmt: skip
    [entry] = json.loads(two_releases.ok("history", "-e", "stage", "--json"))
    assert set(entry) == {
        "project", "environment", "version", "images", "reason", "created_at", "created_by",
        "source", "sha256", "deployments", "reverted_by",
    }  # fmt: skip
    assert set(entry["deployments"][0]) == {
        "deployment_id", "outcome", "finished_at", "overrides",
    }  # fmt: skip
    changes = json.loads(two_releases.ok("diff", "-e", "stage", "--json"))
    assert set(changes) == {"added", "changed", "removed", "unchanged", "policy"}
    prepared = json.loads(two_releases.ok("prepare", "-e", "stage", "-r", "x", "--json"))
    assert set(prepared) == {
        "environment", "created", "reused", "version", "deployed_version", "changes", "manifest",
        "policy", "overrides",
    }  # fmt: skip
    deployed = json.loads(two_releases.ok("deploy", "-e", "stage", "--yes", "--json"))
    assert set(deployed) == {
        "environment", "version", "outcome", "deployment", "changes", "terraform", "checks",
    }  # fmt: skip


def test_status_names_a_newest_deploy_that_failed_below_the_table(cli: Cli) -> None:
    failed_to_deploy(cli.stores())
    lines = [line.rstrip() for line in cli.ok("status").splitlines()]
    assert re.match(r"^stage +v1 +\S+Z +arn:aws:sts::123456789012:user/moto +v2$", lines[1])
    assert re.fullmatch(
        r"stage: v2 failed at \S+Z, started by arn:aws:sts::123456789012:user/moto: "
        r"terraform apply failed \(exit 1\): Error: quota",
        lines[3],
    )
    [stage, prod] = json.loads(cli.ok("status", "--json"))
    assert stage["last_attempt"]["outcome"] == "failed" and prod["last_attempt"] is None
    assert set(stage["last_attempt"]) == {
        "version", "outcome", "finished_at", "started_by", "message",
    }  # fmt: skip


def test_a_failed_last_attempt_is_red_on_a_terminal_only(cli: Cli) -> None:
    failed_to_deploy(cli.stores())
    assert ESCAPE not in cli.ok("status")
    del cli.env["NO_COLOR"]
    assert ESCAPE not in cli.ok("status")  # piped
    cli.env["FORCE_COLOR"] = "1"
    assert f"{ESCAPE}31mstage: v2 failed at " in cli.ok("status")


def test_history_shows_a_manifest_missing_from_the_bucket(two_releases: Cli) -> None:
    stores = two_releases.stores()
    release.prepare(stores, "stage", "second")
    release.prepare(stores, "stage", "third", force=True)
    s3 = two_releases.client("s3")
    s3.delete_object(Bucket=BUCKET, Key="catalogue/release_manifests/stage/v2.json")
    lines = [line.rstrip() for line in two_releases.ok("history", "-e", "stage").splitlines()]
    assert [line.split()[0] for line in lines[1:]] == ["v3", "v2", "v1"]
    assert lines[2].split() == ["v2", "v2", "is", "missing", "from", "the", "bucket"]
    [third, second, first] = json.loads(two_releases.ok("history", "-e", "stage", "--json"))
    assert second == {"version": "v2", "missing": True}
    assert third["version"] == "v3" and first["deployments"][0]["outcome"] == "succeeded"
