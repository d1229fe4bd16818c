"""The README's story, as an operator types it, against the AWS server (moto, or ministack)."""

import json

import pytest

from tests.conftest import Cli
from tests.support.project import UNCHECKED, image
from tests.support.scenes import mark_holder_dead
from tf_release.flows import deploy, release
from tf_release.flows.deploy import DeployOptions
from tf_release.terraform.runner import PlanSummary

pytestmark = pytest.mark.second_aws


def publish(cli: Cli, tag: str, *names: str) -> None:
    for name in names or ("api", "worker"):
        cli.ok("publish", name, image(name, tag))


def ssm_value(cli: Cli, name: str) -> str:
    return cli.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]


def test_publish_prints_the_parameter_it_wrote(cli: Cli) -> None:
    out = cli.ok("publish", "api", image("api", "abc"))
    assert out.strip() == f"Published /catalogue/image_ids/latest/api = {image('api', 'abc')}"
    assert ssm_value(cli, "/catalogue/image_ids/latest/api") == image("api", "abc")


def test_prepare_prints_the_new_version_and_its_changes(cli: Cli) -> None:
    publish(cli, "abc")
    out = cli.ok("prepare", "--env", "stage", "--reason", "first release")
    assert out.splitlines()[0] == "Prepared v1 for stage:"
    assert f"  + api: {image('api', 'abc')}" in out


def test_apply_deploys_and_status_reports_it(cli: Cli) -> None:
    publish(cli, "abc")
    lines = cli.ok("apply", "--env", "stage", "--reason", "first", "--yes").splitlines()
    assert lines[0] == "Deploying v1 to stage (nothing deployed yet): first"  # what it will do
    assert lines[-1] == "Deployed v1 to stage."  # then how it ended
    assert ssm_value(cli, "/catalogue/image_ids/stage/api") == image("api", "abc")
    [status] = json.loads(cli.ok("status", "--env", "stage", "--json"))
    assert status["version"] == "v1"
    assert status["images"]["worker"] == image("worker", "abc")
    assert status["lock"] is None


def test_apply_that_reuses_a_prepared_manifest_says_it_keeps_its_own_reason(cli: Cli) -> None:
    publish(cli, "abc")
    cli.ok("prepare", "--env", "stage", "--reason", "reason A")
    lines = cli.ok("apply", "--env", "stage", "--reason", "reason B", "--yes").splitlines()
    assert lines[:2] == [
        "Deploying v1 to stage (nothing deployed yet): reason A",
        "  v1 already held these images and never ran: it keeps its own reason (--force writes "
        "a new manifest with yours)",
    ]


def test_a_rollback_manifest_deployed_again_is_announced_as_a_deploy(cli: Cli) -> None:
    for tag in ("one", "two"):
        publish(cli, tag)
        cli.ok("apply", "-e", "stage", "-r", tag, "--yes")
    cli.ok("rollback", "-e", "stage", "-r", "two is broken", "--yes")  # v3
    lines = cli.ok("deploy", "-e", "stage", "--version", "v3", "--yes").splitlines()
    assert lines[0] == "Deploying v3 to stage (now v3): two is broken"


def test_the_whole_lifecycle_with_selective_update_promotion_and_rollback(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    cli.ok("apply", "-e", "prod", "-r", "promote first", "--yes")

    publish(cli, "two")
    out = cli.ok("apply", "-e", "stage", "-r", "only api", "--image", "api", "--yes")
    assert "~ api:" in out and "(1 unchanged)" in out
    cli.ok("apply", "-e", "prod", "-r", "promote api", "--yes")
    assert ssm_value(cli, "/catalogue/image_ids/prod/api") == image("api", "two")
    assert ssm_value(cli, "/catalogue/image_ids/prod/worker") == image("worker", "one")

    out = cli.ok("rollback", "-e", "prod", "-r", "api two is broken", "--yes").splitlines()
    assert out[0] == "Rolling prod back to v1 as v3 (now v2): api two is broken"
    assert out[-1] == "Rolled prod back to v1 as v3."
    assert ssm_value(cli, "/catalogue/image_ids/prod/api") == image("api", "one")

    again = cli.run("rollback", "-e", "prod", "-r", "api two is broken (second pager)", "--yes")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "prod already runs the images of v1; nothing to roll back.\n"

    history = json.loads(cli.ok("history", "-e", "prod", "--json"))
    assert [entry["version"] for entry in history] == ["v3", "v2", "v1"]
    assert [entry["source"] for entry in history] == ["v1", "stage@v2", "stage@v1"]
    assert [entry["reverted_by"] for entry in history] == [None, "v3", None]
    assert [d["outcome"] for d in history[0]["deployments"]] == ["succeeded"]
    assert "reverted by v3" in cli.ok("history", "-e", "prod")

    shown = json.loads(cli.ok("show", "-e", "prod", "v2", "--json"))
    assert shown["images"]["api"] == image("api", "two")
    assert shown["reason"] == "promote api"


def test_deploy_a_named_version(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("prepare", "-e", "stage", "-r", "one")
    publish(cli, "two")
    cli.ok("prepare", "-e", "stage", "-r", "two")
    result = json.loads(cli.ok("deploy", "-e", "stage", "--version", "v1", "--yes", "--json"))
    assert result["version"] == "v1" and result["outcome"] == "succeeded"
    assert ssm_value(cli, "/catalogue/image_ids/stage/api") == image("api", "one")


def test_status_at_a_time_before_any_deploy_says_nothing_ran(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    [status] = json.loads(cli.ok("status", "-e", "stage", "--at", "2000-01-01T00:00Z", "--json"))
    assert status["version"] is None
    [status] = json.loads(cli.ok("status", "-e", "stage", "--at", "2999-01-01T00:00Z", "--json"))
    assert status["version"] == "v1"


def test_prepare_with_nothing_new_says_so_and_exits_zero(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    out = cli.ok("prepare", "-e", "stage", "-r", "again")
    assert "already runs these images" in out


def test_deploy_without_a_terminal_or_yes_refuses_before_writing(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("prepare", "-e", "stage", "-r", "one")
    result = cli.run("deploy", "-e", "stage")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tf-release: error: no terminal to confirm on: pass --yes to deploy without asking"
    )
    [status] = json.loads(cli.ok("status", "-e", "stage", "--json"))
    assert status["version"] is None and status["lock"] is None


def test_unlock_clears_the_lock_of_a_deploy_that_died(cli: Cli) -> None:
    stores = cli.stores()
    release.publish(stores, "api", image("api", "one"))
    release.prepare(stores, "stage", "one")

    class DiesMidway:
        def plan(self) -> PlanSummary:
            raise SystemExit("the laptop died")

        def apply(self) -> None:
            raise AssertionError("never reached")

    with pytest.raises(SystemExit):
        deploy.deploy(stores, "stage", options=DeployOptions(terraform=DiesMidway()))
    mark_holder_dead(stores)

    holder = cli.caller()
    out = cli.ok("status", "-e", "stage")
    assert f"a deploy is in progress or was abandoned: {holder}" in out
    assert "tf-release unlock --env stage" in out
    refused = cli.run("unlock", "-e", "stage")
    assert refused.returncode == 2 and "pass --yes to clear the lock" in refused.stderr

    out = cli.ok("unlock", "-e", "stage", "--yes")
    assert out.startswith(f"Cleared the lock of {holder} on ")
    assert cli.ok("unlock", "-e", "stage", "--yes").strip() == "stage is not locked."
    cli.ok("deploy", "-e", "stage", "--yes")
    [status] = json.loads(cli.ok("status", "-e", "stage", "--json"))
    assert status["version"] == "v1" and status["lock"] is None


def test_diff_shows_what_a_promotion_would_change(cli: Cli) -> None:
    stores = cli.stores()
    for name in ("api", "worker"):
        release.publish(stores, name, image(name, "one"))
    release.apply(stores, "stage", "one")
    release.apply(stores, "prod", "one")
    release.publish(stores, "api", image("api", "two"))
    release.apply(stores, "stage", "two")
    out = cli.ok("diff", "--env", "prod")
    assert out.splitlines() == [
        "prod ← stage@v2:",
        f"  ~ api: {image('api', 'one')} → {image('api', 'two')}",
        "  (1 unchanged)",
    ]
    against_latest = json.loads(cli.ok("diff", "--env", "prod", "--against", "latest", "--json"))
    assert against_latest["changed"] == {
        "api": {"from": image("api", "one"), "to": image("api", "two")}
    }
    assert against_latest["unchanged"] == ["worker"]


def test_diff_between_two_versions(cli: Cli) -> None:
    stores = cli.stores()
    release.publish(stores, "api", image("api", "one"))
    release.prepare(stores, "stage", "one")
    release.publish(stores, "worker", image("worker", "one"))
    release.prepare(stores, "stage", "two")
    assert cli.ok("diff", "-e", "stage", "v1", "v2").splitlines() == [
        "stage v1 → v2:",
        f"  + worker: {image('worker', 'one')}",
        "  (1 unchanged)",
    ]
    assert cli.ok("diff", "-e", "stage", "v2", "v2").splitlines()[-1] == "  no changes"
    refused = cli.run("diff", "-e", "stage", "v1")
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith(
        "give two versions to compare (diff --env ENV vA vB), not 1"
    )


def in_new_folder(cli: Cli) -> Cli:
    del cli.env["TF_RELEASE_CONFIG"]
    cli.cwd = cli.cwd / "new-project"
    cli.cwd.mkdir()
    return cli


def test_init_writes_a_config_that_works_and_never_overwrites(cli: Cli) -> None:
    in_new_folder(cli)
    out = cli.ok("init", "--project", "catalogue", "--bucket", "acme-releases", "--region",
                 "eu-west-1", "--env", "stage", "--env", "prod")  # fmt: skip
    assert out.splitlines() == [
        "Wrote tf-release.toml: environments latest → stage → prod.",
        "Wrote tf-release.schema.json, the JSON Schema your editor checks it against.",
    ]
    config = cli.cwd / "tf-release.toml"
    written = config.read_text()
    assert 'promote_from = "stage"' in written and "# terraform_dir" in written
    config.write_text(written + UNCHECKED)  # image() names a made-up registry
    text = config.read_text()
    cli.ok("publish", "api", image("api", "one"))  # the new file is found and used
    assert "Deployed v1 to stage." in cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    refused = cli.run("init", "--project", "other", "--bucket", "other-bucket")
    assert refused.returncode == 2 and "already exists" in refused.stderr
    assert (cli.cwd / "tf-release.toml").read_text() == text


def test_init_refuses_bad_answers_and_writes_nothing(cli: Cli) -> None:
    in_new_folder(cli)
    refused = cli.run("init", "--project", "catalogue", "--bucket", "Bad_Bucket")
    assert refused.returncode == 2 and "tf-release.toml: bucket" in refused.stderr
    assert list(cli.cwd.iterdir()) == []
    refused = cli.run("init", "--project", "catalogue")
    assert refused.returncode == 2 and "pass --project and --bucket" in refused.stderr


def test_deploy_with_json_announces_on_stderr(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("prepare", "-e", "stage", "-r", "one\nand more")
    done = cli.run("deploy", "-e", "stage", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "succeeded"
    assert done.stderr.startswith("Deploying v1 to stage (nothing deployed yet): one …\n  + api:")


def test_rollback_says_what_it_will_do_before_terraform_and_counts_after(tf_cli: Cli) -> None:
    """The facts lead, Terraform's output follows, the summary ends with Terraform's counts."""
    stack = tf_cli.copy_fixture("local_stack")
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
        'workspace = "stage"\n'
    )
    stores = tf_cli.stores()  # v1 and v2 deployed to SSM only: Terraform runs once, below
    for tag in ("one", "two"):
        release.publish(stores, "api", image("api", tag))
        deploy.deploy(stores, "stage", release.prepare(stores, "stage", tag).manifest.version)
    out = tf_cli.ok("rollback", "-e", "stage", "-r", "two is broken", "--yes").splitlines()
    assert out[:2] == [
        "Rolling stage back to v1 as v3 (now v2): two is broken",
        f"  ~ api: {image('api', 'two')} → {image('api', 'one')}",
    ]
    plan = next(i for i, line in enumerate(out) if line.startswith("Plan: 1 to add"))
    assert out.index("Rolled stage back to v1 as v3.") > plan > 1
    assert out[-1] == "  Terraform: 1 to add, 0 to change, 0 to destroy"
