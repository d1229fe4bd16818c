"""Approvals: a release into prod needs a second person, recorded beside the manifest."""

import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.iam import as_moto_checks_it, enforce_iam
from tests.support.project import image

HELD = 5
RULES = (
    '[environments.stage]\npromote_from = "latest"\n\n'
    '[environments.prod]\npromote_from = "stage"\napprovals = {needed}\n{more}'
)


def person(cli: Cli, name: str, policy: dict[str, object] | None = None) -> Cli:
    """`cli` acting as IAM user NAME (STS names the caller from its key)."""
    iam = cli.client("iam")
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    env = dict(cli.env, AWS_ACCESS_KEY_ID=key["AccessKeyId"])
    env["AWS_SECRET_ACCESS_KEY"] = key["SecretAccessKey"]
    return replace(cli, env=env)


def arn(name: str) -> str:
    return f"arn:aws:iam::123456789012:user/{name}"


def waiting_in_prod(cli: Cli, needed: int = 2, more: str = "") -> str:
    """stage runs api one; prod's v1 (written by the default caller) waits for approvals."""
    cli.write_config(RULES.format(needed=needed, more=more))
    cli.ok("publish", "api", image("api", "one"))
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    held = cli.run("apply", "-e", "prod", "-r", "one", "--yes")
    assert held.returncode == HELD, held.stderr
    return held.stderr


def deployed(cli: Cli, env: str = "prod") -> str | None:
    [status] = json.loads(cli.ok("status", "-e", env, "--json"))
    return status["version"]


def test_apply_prepares_and_stops_with_the_command_to_approve(cli: Cli) -> None:
    stderr = waiting_in_prod(cli)
    author = json.loads(cli.ok("show", "-e", "stage", "v1", "--json"))["created_by"]
    assert stderr == (
        f"tf-release: error: prod needs 2 approval(s) of v1 by someone other than its author "
        f"({author}); it has 0: approve it with `tf-release approve --env prod v1`, or pass "
        '--override approvals --override-reason "…" to go anyway\n'
    )
    assert deployed(cli) is None
    shown = json.loads(cli.ok("show", "-e", "prod", "v1", "--json"))
    assert shown["approvals"] == {"needed": 2, "approved": [], "pending": 2, "approvers": []}


def test_two_approvals_by_others_let_the_deploy_through_and_are_recorded(cli: Cli) -> None:
    waiting_in_prod(cli)
    alice, bob = person(cli, "alice"), person(cli, "bob")
    said = alice.ok("approve", "-e", "prod", "v1", "--reason", "plan reviewed")
    assert said.splitlines() == [
        f"Approved v1 of prod as {arn('alice')}.",
        "  It has 1 of the 2 approval(s) it needs.",
    ]
    held = cli.run("deploy", "-e", "prod", "--version", "v1", "--yes")
    assert held.returncode == HELD and f"it has 1 ({arn('alice')})" in held.stderr
    bob.ok("approve", "-e", "prod", "v1")
    done = json.loads(cli.ok("deploy", "-e", "prod", "--version", "v1", "--yes", "--json"))
    assert done["outcome"] == "succeeded" and deployed(cli) == "v1"
    record = done["deployment"]["approvals"]
    assert [(a["approver"], a["reason"]) for a in record] == [
        (arn("alice"), "plan reviewed"),
        (arn("bob"), ""),
    ]


def test_approving_your_own_manifest_twice_or_one_that_is_not_there_is_bad_input(
    cli: Cli,
) -> None:
    waiting_in_prod(cli)
    own = cli.run("approve", "-e", "prod", "v1")
    assert own.returncode == 2
    assert own.stderr == "tf-release: error: you wrote v1 of prod: someone else must approve it\n"
    alice = person(cli, "alice")
    alice.ok("approve", "-e", "prod", "v1")
    again = alice.run("approve", "-e", "prod", "v1")
    assert again.returncode == 2
    assert again.stderr.startswith("tf-release: error: you approved v1 of prod already at ")
    missing = alice.run("approve", "-e", "prod", "v9")
    assert missing.returncode == 2 and "v9" in missing.stderr
    keys = cli.client("s3").list_objects_v2(Bucket="acme-releases", Prefix="catalogue/approvals/")
    assert len(keys["Contents"]) == 1


def test_two_approvers_racing_both_count_and_one_person_racing_counts_once(cli: Cli) -> None:
    waiting_in_prod(cli)
    alice, bob = person(cli, "alice"), person(cli, "bob")
    runs = [alice, alice, bob, bob]
    results: list[int] = [0] * len(runs)

    def go(index: int) -> None:
        results[index] = runs[index].run("approve", "-e", "prod", "v1").returncode

    threads = [threading.Thread(target=go, args=(index,)) for index in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 0, 2, 2]  # each person once; the second try is refused
    shown = json.loads(cli.ok("show", "-e", "prod", "v1", "--json"))["approvals"]
    assert sorted(a["approver"] for a in shown["approved"]) == [arn("alice"), arn("bob")]
    assert shown["pending"] == 0


def test_an_approval_counts_for_its_manifest_only(cli: Cli) -> None:
    waiting_in_prod(cli, needed=1)
    alice = person(cli, "alice")
    alice.ok("approve", "-e", "prod", "v1")
    cli.ok("publish", "api", image("api", "two"))
    cli.ok("apply", "-e", "stage", "-r", "two", "--yes")
    held = cli.run("apply", "-e", "prod", "-r", "two", "--yes")  # v2: approved by nobody
    assert held.returncode == HELD and "approval(s) of v2" in held.stderr

    # v1 written again under its number (by hand): the approval named the old bytes
    s3 = cli.client("s3")
    key = "catalogue/release_manifests/prod/v1.json"
    document = json.loads(s3.get_object(Bucket="acme-releases", Key=key)["Body"].read())
    from tf_release.model.manifest import Manifest

    changed = Manifest.from_json(json.dumps(document).encode(), key)
    changed = replace(changed, reason="rewritten")
    s3.put_object(Bucket="acme-releases", Key=key, Body=changed.to_json())
    still = cli.run("deploy", "-e", "prod", "--version", "v1", "--yes")
    assert still.returncode == HELD and "it has 0" in still.stderr


def test_a_revoked_approval_no_longer_counts_and_is_kept(cli: Cli) -> None:
    waiting_in_prod(cli, needed=1)
    alice = person(cli, "alice")
    alice.ok("approve", "-e", "prod", "v1")
    said = alice.ok("approve", "-e", "prod", "v1", "--revoke", "--reason", "wrong image")
    assert said.splitlines()[0] == f"Took back your approval of v1 of prod as {arn('alice')}."
    held = cli.run("deploy", "-e", "prod", "--version", "v1", "--yes")
    assert held.returncode == HELD
    twice = alice.run("approve", "-e", "prod", "v1", "--revoke")
    assert twice.returncode == 2 and "back already" in twice.stderr
    never = person(cli, "bob").run("approve", "-e", "prod", "v1", "--revoke")
    assert never.returncode == 2 and "you have not approved v1 of prod" in never.stderr
    keys = cli.client("s3").list_objects_v2(Bucket="acme-releases", Prefix="catalogue/approvals/")
    assert sorted(Path(item["Key"]).name.split(".", 1)[1] for item in keys["Contents"]) == [
        "json",
        "revoked.json",
    ]


def test_an_override_goes_past_the_rule_and_is_recorded(cli: Cli) -> None:
    waiting_in_prod(cli)
    done = json.loads(cli.ok(
        "deploy", "-e", "prod", "--version", "v1", "--yes", "--json",
        "--override", "approvals", "--override-reason", "incident 42",
    ))  # fmt: skip
    assert done["outcome"] == "succeeded"
    assert [o["rule"] for o in done["deployment"]["overrides"]] == ["approvals"]


def test_a_rollback_is_never_held_by_approvals(cli: Cli) -> None:
    waiting_in_prod(cli, needed=1)
    alice = person(cli, "alice")
    alice.ok("approve", "-e", "prod", "v1")
    cli.ok("deploy", "-e", "prod", "--version", "v1", "--yes")
    cli.ok("publish", "api", image("api", "two"))
    cli.ok("apply", "-e", "stage", "-r", "two", "--yes")
    assert cli.run("apply", "-e", "prod", "-r", "two", "--yes").returncode == HELD
    alice.ok("approve", "-e", "prod", "v2")
    cli.ok("deploy", "-e", "prod", "--version", "v2", "--yes")
    back = cli.run("rollback", "-e", "prod", "-r", "two is broken", "--yes")
    assert back.returncode == 0, back.stderr
    assert deployed(cli) == "v3"


def test_wait_for_approval_goes_through_once_approved(cli: Cli) -> None:
    waiting_in_prod(cli, needed=1)
    run = cli.start("deploy", "-e", "prod", "--version", "v1", "--yes", "--wait-for-approval", "2m")
    time.sleep(1)
    assert run.poll() is None  # still waiting
    person(cli, "alice").ok("approve", "-e", "prod", "v1")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert "Deployed v1 to prod." in out and f"Approved by {arn('alice')}" in out


def test_wait_for_approval_gives_up_when_the_time_is_up(cli: Cli) -> None:
    waiting_in_prod(cli, needed=1)
    started = time.monotonic()
    held = cli.run("deploy", "-e", "prod", "--version", "v1", "--yes", "--wait-for-approval", "3s")
    assert held.returncode == HELD and "it has 0" in held.stderr
    assert time.monotonic() - started >= 3


def test_only_named_approvers_may_approve(cli: Cli) -> None:
    waiting_in_prod(cli, needed=1, more=f'approvers = ["{arn("lead-*")}"]\n')
    refused = person(cli, "alice").run("approve", "-e", "prod", "v1")
    assert refused.returncode == 2
    assert refused.stderr == (
        f"tf-release: error: {arn('alice')} may not approve in prod: its approvers are "
        f"{arn('lead-*')}\n"
    )
    person(cli, "lead-ann").ok("approve", "-e", "prod", "v1")
    cli.ok("deploy", "-e", "prod", "--version", "v1", "--yes")


def test_policy_lists_the_approvals_rule(cli: Cli) -> None:
    waiting_in_prod(cli)
    [rule] = json.loads(cli.ok("policy", "-e", "prod", "--json"))["rules"]
    assert rule["rule"] == "approvals" and rule["held"] is True
    assert rule["setting"] == "2 by someone other than the author"


@pytest.mark.moto_only("IAM enforcement is moto's /moto-api/reset-auth")
def test_an_approver_cannot_deploy_and_a_deployer_cannot_approve(cli: Cli) -> None:
    waiting_in_prod(cli, needed=1)
    approver_policy = json.loads(cli.ok("iam-policy", "--approver"))
    deployer_policy = as_moto_checks_it(json.loads(cli.ok("iam-policy")))
    alice = person(cli, "alice")  # created first, to learn her id: moto does not expand
    user_id = cli.client("iam").get_user(UserName="alice")["User"]["UserId"]
    text = json.dumps(approver_policy).replace("${aws:userid}", user_id)  # as IAM would
    cli.client("iam").put_user_policy(UserName="alice", PolicyName="p", PolicyDocument=text)
    deployer = person(cli, "dave", deployer_policy)
    enforce_iam(cli, 0)
    try:
        refused = deployer.run("approve", "-e", "prod", "v1")
        assert refused.returncode == 1 and "AWS denied access" in refused.stderr
        alice.ok("approve", "-e", "prod", "v1")
        denied = alice.run("deploy", "-e", "prod", "--version", "v1", "--yes")
        assert denied.returncode == 1 and "AWS denied access" in denied.stderr
        deployer.ok("deploy", "-e", "prod", "--version", "v1", "--yes")
    finally:
        enforce_iam(cli, float("inf"))


def test_status_history_and_the_board_show_a_manifest_awaiting_approval(cli: Cli) -> None:
    waiting_in_prod(cli)
    person(cli, "alice").ok("approve", "-e", "prod", "v1")
    [status] = json.loads(cli.ok("status", "-e", "prod", "--json"))
    awaiting = status["awaiting_approval"]
    assert (awaiting["version"], awaiting["needed"], awaiting["pending"]) == ("v1", 2, 1)
    assert "prod: v1 awaits approval (1 of 2): `tf-release approve --env prod v1`" in cli.ok(
        "status", "-e", "prod"
    )
    assert "awaiting approval (1 of 2)" in cli.ok("history", "-e", "prod")
    assert "Awaits approval" in cli.ok("board", "--output", "-")


def test_diff_says_a_promotion_will_need_approval(cli: Cli) -> None:
    cli.write_config(RULES.format(needed=2, more=""))
    cli.ok("publish", "api", image("api", "one"))
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    said = cli.ok("diff", "-e", "prod")
    assert "Its manifest will need 2 approval(s) by someone other than its author" in said
    assert json.loads(cli.ok("diff", "-e", "prod", "--json"))["policy"]["approvals_needed"] == 2


def test_the_ci_summary_names_who_approved(cli: Cli) -> None:
    waiting_in_prod(cli, needed=1)
    person(cli, "alice").ok("approve", "-e", "prod", "v1", "--reason", "looks right")
    summary = cli.cwd / "summary.md"
    cli.ok("deploy", "-e", "prod", "--version", "v1", "--yes", "--summary", str(summary))
    assert f"- **approved by:** {arn('alice')} at " in summary.read_text()
    assert ": looks right" in summary.read_text()


def test_a_plan_only_deploy_is_not_held_so_approvers_can_see_the_plan(cli: Cli) -> None:
    waiting_in_prod(cli)
    planned = json.loads(cli.ok("deploy", "-e", "prod", "--version", "v1", "--plan-only", "--json"))
    assert planned["outcome"] == "planned" and deployed(cli) is None
