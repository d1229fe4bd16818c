"""What people see: tables, coloured diffs (never when piped or under NO_COLOR), JSON shapes."""

import json
import re

import pytest

from tests.conftest import Cli
from tests.support.project import BUCKET, ecr_image, image, push_image
from tests.support.scenes import failed_to_deploy, released
from tf_release.flows import release

ESCAPE = "\x1b["
MINUTE = r"\d{4}-\d\d-\d\d \d\d:\d\dZ"  # 2026-11-26 11:02Z
MOTO = "arn:aws:sts::123456789012:user/moto"  # the identity moto gives the test credentials


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
    assert re.fullmatch(rf"v2 +{MINUTE} +moto +latest +fix search +~api +succeeded", lines[1])
    assert lines[2].startswith("v1 ")


def test_history_shows_a_first_manifest_adding_its_images(two_releases: Cli) -> None:
    two_releases.ok("apply", "-e", "stage", "-r", "fix search", "--yes")
    two_releases.env["COLUMNS"] = "200"  # whatever the terminal the suite runs from
    first = two_releases.ok("history", "-e", "stage").splitlines()[2]
    assert re.search(r" first release +\+api \+worker +succeeded", first)


def test_history_with_a_limit_shows_the_changes_of_its_oldest_row_too(two_releases: Cli) -> None:
    """An empty cell would read as "changed nothing": the manifest before it is read too."""
    two_releases.ok("apply", "-e", "stage", "-r", "fix search", "--yes")
    [newest] = two_releases.ok("history", "-e", "stage", "--limit", "1").splitlines()[1:]
    assert re.fullmatch(rf"v2 +{MINUTE} +moto +latest +fix search +~api +succeeded", newest.strip())


def test_status_is_a_table_with_locks_explained_below(two_releases: Cli) -> None:
    lines = [line.rstrip() for line in two_releases.ok("status").splitlines()]
    assert lines[0].split() == ["environment", "version", "deployed", "by", "newest"]
    assert re.fullmatch(rf"stage +v1 +{MINUTE} +moto +v1", lines[1])
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


def test_diff_json_names_ecr_images_with_their_whole_digests(cli: Cli) -> None:
    ecr = cli.client("ecr")
    for name in ("api", "worker"):
        cli.ok("publish", name, push_image(ecr, name, "1.0.0"))
    cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    cli.ok("publish", "api", push_image(ecr, "api", "1.1.0"))
    [running] = ecr.describe_images(repositoryName="api", imageIds=[{"imageTag": "1.0.0"}])[
        "imageDetails"
    ]
    changes = json.loads(cli.ok("diff", "-e", "stage", "--json"))
    old, new = ecr_image("api", "1.0.0"), ecr_image("api", "1.1.0")
    assert changes["changed"] == {"api": {"from": f"{old}@{running['imageDigest']}", "to": new}}
    assert changes["unchanged"] == ["worker"]


def test_json_shapes_are_stable(two_releases: Cli) -> None:
    [status, _] = json.loads(two_releases.ok("status", "--json"))
    assert set(status) == {
        "environment", "at", "version", "deployed_at", "deployed_by", "deployment_id",
        "images", "latest_version", "lock", "last_attempt", "overrides", "awaiting_approval",
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
    assert re.fullmatch(rf"stage +v1 +{MINUTE} +moto +v2", lines[1])
    assert re.fullmatch(
        rf"stage: v2 failed at {MINUTE}, started by moto: "
        r"terraform apply failed \(exit 1\): Error: quota; the stack may be partly applied: "
        r"redeploy with `tf-release deploy --env stage`; .*",
        lines[3],
    )
    [stage, prod] = json.loads(cli.ok("status", "--json"))
    assert stage["last_attempt"]["outcome"] == "failed" and prod["last_attempt"] is None
    assert set(stage["last_attempt"]) == {
        "version", "outcome", "finished_at", "started_by", "message", "partly_applied",
    }  # fmt: skip
    assert stage["last_attempt"]["partly_applied"] is True  # it failed inside terraform apply


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


ROLE = "release-deployer-for-the-catalogue-team"
LONG_REASON = (
    "first release of the catalogue after the great migration from the old platform\n"
    "\n"
    "see CAT-1234 for the whole story"
)


def as_alice(cli: Cli, session: str = "alice") -> str:
    """The CLI's credentials become alice's session of a long-named role; returns the ARN."""
    sts = cli.client("sts")
    role = f"arn:aws:iam::123456789012:role/{ROLE}"
    credentials = sts.assume_role(RoleArn=role, RoleSessionName=session)["Credentials"]
    cli.env.update(
        AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
        AWS_SESSION_TOKEN=credentials["SessionToken"],
    )
    return f"arn:aws:sts::123456789012:assumed-role/{ROLE}/{session}"


@pytest.fixture
def alices_releases(cli: Cli) -> Cli:
    """alice (an assumed role) applied v1 with a long reason of several lines, v2, and rolled
    back to v1 as v3: long identities, reasons and a revert to fit in the tables."""
    as_alice(cli)
    names = ("api", "worker", "search-indexer")
    for name in names:
        cli.ok("publish", name, image(name, "one"))
    cli.ok("apply", "-e", "stage", "-r", LONG_REASON, "--yes")
    for name in names:
        cli.ok("publish", name, image(name, "two"))
    cli.ok("apply", "-e", "stage", "-r", "a long reason that goes on about search " * 3, "--yes")
    cli.ok("rollback", "-e", "stage", "-r", "two is broken", "--yes")
    return cli


def test_tables_fit_80_columns_keeping_version_person_and_outcome(alices_releases: Cli) -> None:
    alices_releases.env["COLUMNS"] = "80"
    history = alices_releases.ok("history", "-e", "stage").splitlines()
    status = alices_releases.ok("status").splitlines()
    assert max(len(line.rstrip()) for line in history + status) <= 80
    rows = {line.split()[0]: line for line in history if re.match(r"v\d ", line)}
    assert list(rows) == ["v3", "v2", "v1"]
    for row in rows.values():
        assert re.match(rf"v\d +{MINUTE} +alice +(v1|latest) +\S", row)
    assert rows["v3"].rstrip().endswith(" succeeded")
    assert rows["v2"].rstrip().endswith(" reverted by v3")
    assert re.search(r" latest +first[^…]*… +\+api \S*… +succeeded", rows["v1"])  # both give way
    assert "CAT-1234" not in "\n".join(history)
    assert re.fullmatch(rf"stage +v3 +{MINUTE} +alice +v3", status[1].rstrip())


def test_a_long_sso_session_name_is_cut_and_leaves_the_reason_room(cli: Cli) -> None:
    as_alice(cli, "alexandra.longfamilyname@example.com")
    cli.ok("publish", "api", image("api", "one"))
    cli.ok("apply", "-e", "stage", "-r", "first release of the api", "--yes")
    cli.env["COLUMNS"] = "80"
    [_, row] = cli.ok("history", "-e", "stage").splitlines()
    assert re.match(rf"v1 +{MINUTE} +alexandra.longf… +latest +firs… +\+api", row), row


def test_wide_shows_the_whole_identity_time_and_reason_and_json_keeps_them(
    alices_releases: Cli,
) -> None:
    arn = as_alice(alices_releases)
    alices_releases.env["COLUMNS"] = "80"  # --wide is as wide as it needs
    history = alices_releases.ok("history", "-e", "stage", "--wide")
    assert re.search(rf"^v1 +\S+T\S+Z +{re.escape(arn)} +latest +first release", history, re.M)
    assert "see CAT-1234 for the whole story" in history
    assert re.search(rf"^stage +v3 +\S+T\S+Z +{re.escape(arn)} +v3", alices_releases.ok(
        "status", "--wide"), re.M)  # fmt: skip
    assert f"by {arn}" in alices_releases.ok("show", "-e", "stage", "v1", "--wide")
    [_, _, v1] = json.loads(alices_releases.ok("history", "-e", "stage", "--json"))
    assert v1["created_by"] == arn and v1["reason"] == LONG_REASON
    [stage, _] = json.loads(alices_releases.ok("status", "--json"))
    assert stage["deployed_by"] == arn


def test_show_shortens_digests_unless_wide(cli: Cli) -> None:
    url = push_image(cli.client("ecr"), "api", "1.4")
    cli.ok("publish", "api", url)
    cli.ok("apply", "-e", "stage", "-r", "pinned", "--yes")
    [digest] = json.loads(cli.ok("show", "-e", "stage", "v1", "--json"))["digests"].values()
    shown = cli.ok("show", "-e", "stage", "v1").splitlines()
    assert re.fullmatch(rf"api +{re.escape(url)} +{re.escape(digest[:13])}…", shown[-1].rstrip())
    wide = cli.ok("show", "-e", "stage", "v1", "--wide").splitlines()
    assert re.fullmatch(rf"api +{re.escape(url)} +{digest}", wide[-1].rstrip())


def test_show_at_80_columns_keeps_each_url_whole_on_a_line_of_its_own(cli: Cli) -> None:
    url = push_image(cli.client("ecr"), "api", "2026.12.06-build-1234")
    cli.ok("publish", "api", url)
    cli.ok("apply", "-e", "stage", "-r", "pinned", "--yes")
    [digest] = json.loads(cli.ok("show", "-e", "stage", "v1", "--json"))["digests"].values()
    cli.env["COLUMNS"] = "80"
    shown = [line.rstrip() for line in cli.ok("show", "-e", "stage", "v1").splitlines()]
    assert shown[-2:] == [f"api  {digest[:13]}…", f"  {url}"]
