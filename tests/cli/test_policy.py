"""Release rules through the CLI against a moto server, time set by TF_RELEASE_NOW: soak before
a promotion into prod, freeze windows, overrides on the record, and exit 5 when held.

24 March 2026 is a Tuesday; London moves to BST on Sunday 29 March."""

import json

import pytest

from tests.conftest import Cli
from tests.support.markdown import parse
from tests.support.project import BUCKET, image

RULES = """\
[environments.stage]
promote_from = "latest"

[environments.prod]
promote_from = "stage"
soak = "2h"
freeze = ["Fri 16:00 - Mon 08:00", "2026-12-22 - 2027-01-04"]
timezone = "Europe/London"
"""
HELD = 5


def at(cli: Cli, moment: str) -> Cli:
    """The clock at `moment`, for reads and (a rehearsal) writes."""
    cli.env["TF_RELEASE_NOW"] = moment
    cli.env["TF_RELEASE_NOW_WRITES"] = "1"
    return cli


def release_stage(cli: Cli, moment: str, tag: str, *names: str) -> None:
    at(cli, moment)
    for name in names or ("api", "worker"):
        cli.ok("publish", name, image(name, tag))
    selected = [arg for name in names for arg in ("--image", name)]
    cli.ok("apply", "--env", "stage", "--reason", f"stage {tag}", "--yes", *selected)


@pytest.fixture
def ruled(cli: Cli) -> Cli:
    """prod soaks 2h behind stage and freezes at weekends; stage ran api and worker 1 at 10:00."""
    cli.write_config(RULES)
    release_stage(cli, "2026-03-24T10:00Z", "1")
    return cli


def prod_keys(cli: Cli) -> list[str]:
    listed = cli.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="catalogue/")
    return [item["Key"] for item in listed.get("Contents", []) if "/prod/" in item["Key"]]


def test_a_set_clock_answers_what_if_but_writes_nothing_unless_rehearsing(ruled: Cli) -> None:
    """A forgotten `export TF_RELEASE_NOW` would date a release falsely and walk it past a rule."""
    what_if = at(ruled, "2026-03-27T17:00Z")
    del what_if.env["TF_RELEASE_NOW_WRITES"]
    assert "freeze Fri 16:00 - Mon 08:00: holds" in what_if.ok("policy", "--env", "prod")
    for command in (
        ["apply", "--env", "prod", "--reason", "promote", "--yes"],
        ["publish", "api", image("api", "2")],
        ["rollback", "--env", "stage", "--reason", "back", "--yes"],
    ):
        result = what_if.run(*command)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "tf-release: error: TF_RELEASE_NOW is set (2026-03-27T17:00Z): it is for asking what "
            "if (policy, diff, board); unset it to write, or set TF_RELEASE_NOW_WRITES=1 to "
            "rehearse against a scratch bucket"
        )
    assert prod_keys(ruled) == []


def test_a_promotion_younger_than_the_soak_time_exits_5_and_writes_nothing(ruled: Cli) -> None:
    result = at(ruled, "2026-03-24T11:00Z").run(
        "apply", "--env", "prod", "--reason", "promote", "--yes"
    )
    assert result.returncode == HELD
    assert result.stderr.strip() == (
        "tf-release: error: prod is held by soak (stage has run api, worker for 1h of 2h) until "
        'Tue 2026-03-24 12:00 GMT: pass --override soak --override-reason "…" to go anyway'
    )
    assert prod_keys(ruled) == []  # no manifest, no state, no lock


def test_a_promotion_goes_through_once_the_source_has_run_the_images_for_the_soak_time(
    ruled: Cli,
) -> None:
    at(ruled, "2026-03-24T12:00Z").ok("apply", "--env", "prod", "--reason", "promote", "--yes")
    [prod] = json.loads(ruled.ok("status", "--env", "prod", "--json"))
    assert prod["version"] == "v1" and prod["overrides"] == []


def test_an_image_soaks_from_the_first_source_deploy_that_brought_it(ruled: Cli) -> None:
    """worker 2 came to stage at 11:30; api 1 has run there since 10:00, through that deploy."""
    release_stage(ruled, "2026-03-24T11:30Z", "2", "worker")
    at(ruled, "2026-03-24T12:10Z")
    held = ruled.run("apply", "--env", "prod", "--reason", "all", "--yes")
    assert held.returncode == HELD
    assert "stage has run worker for 40m of 2h) until Tue 2026-03-24 13:30 GMT" in held.stderr
    ruled.ok("apply", "--env", "prod", "--reason", "api only", "--yes", "--image", "api")


def test_a_manifest_prepared_past_the_soak_is_held_again_when_deployed(ruled: Cli) -> None:
    at(ruled, "2026-03-24T11:00Z")
    ruled.ok("prepare", "--env", "prod", "--reason", "early", "--override", "soak",
             "--override-reason", "prepared for the 12:00 window")  # fmt: skip
    held = ruled.run("deploy", "--env", "prod", "--yes")
    assert held.returncode == HELD and "held by soak" in held.stderr
    assert [key for key in prod_keys(ruled) if "deployments" in key] == []


def test_an_override_is_recorded_and_shown_in_history_show_and_status(ruled: Cli) -> None:
    out = at(ruled, "2026-03-24T11:00Z").ok(
        "apply", "--env", "prod", "--reason", "promote", "--yes",
        "--override", "soak", "--override-reason", "hotfix for INC-42",
    )  # fmt: skip
    [line] = [line for line in out.splitlines() if line.startswith("  Override: ")]
    assert line == "  Override: soak overridden by moto: hotfix for INC-42"
    assert "succeeded (override)" in ruled.ok("history", "--env", "prod")
    wide = ruled.ok("history", "--env", "prod", "--wide")
    assert "(override soak: hotfix for INC-42)" in wide
    assert "soak overridden by " in ruled.ok("show", "--env", "prod", "v1")
    assert "prod: v1 went past a release rule: soak overridden" in ruled.ok("status")
    [prod] = json.loads(ruled.ok("status", "--env", "prod", "--json"))
    [override] = prod["overrides"]
    assert override["rule"] == "soak" and override["reason"] == "hotfix for INC-42"
    assert override["by"].startswith("arn:aws:")
    [entry] = json.loads(ruled.ok("history", "--env", "prod", "--json"))
    assert entry["deployments"][0]["overrides"] == [override]


def test_an_override_of_a_rule_that_does_not_hold_is_accepted_and_not_recorded(
    ruled: Cli,
) -> None:
    at(ruled, "2026-03-24T12:00Z").ok(
        "apply", "--env", "prod", "--reason", "promote", "--yes",
        "--override", "freeze", "--override-reason", "just in case",
    )  # fmt: skip
    [prod] = json.loads(ruled.ok("status", "--env", "prod", "--json"))
    assert prod["overrides"] == []


def test_an_override_without_a_reason_is_bad_input(ruled: Cli) -> None:
    result = at(ruled, "2026-03-24T11:00Z").run(
        "apply", "--env", "prod", "--reason", "promote", "--yes", "--override", "soak"
    )
    assert result.returncode == 2
    assert "--override needs --override-reason" in result.stderr


@pytest.mark.parametrize(
    "command",
    [["prepare", "--reason", "r"], ["apply", "--reason", "r", "--yes"], ["deploy", "--yes"]],
    ids=["prepare", "apply", "deploy"],
)
def test_a_freeze_holds_prepare_apply_and_deploy(ruled: Cli, command: list[str]) -> None:
    at(ruled, "2026-03-24T12:00Z").ok("prepare", "--env", "prod", "--reason", "before")
    before = prod_keys(ruled)
    result = at(ruled, "2026-03-27T17:00Z").run(command[0], "--env", "prod", *command[1:])
    assert result.returncode == HELD
    assert result.stderr.strip() == (
        "tf-release: error: prod is frozen (Fri 16:00 - Mon 08:00) until Mon 2026-03-30 08:00 BST:"
        ' pass --override freeze --override-reason "…" to go anyway'
    )
    assert prod_keys(ruled) == before


def test_both_rules_overridden_are_both_recorded(ruled: Cli) -> None:
    release_stage(ruled, "2026-03-27T16:30Z", "2", "api")
    at(ruled, "2026-03-27T17:00Z").ok(
        "apply", "--env", "prod", "--reason", "promote", "--yes", "--override", "freeze",
        "--override", "soak", "--override-reason", "security fix",
    )  # fmt: skip
    [prod] = json.loads(ruled.ok("status", "--env", "prod", "--json"))
    assert [item["rule"] for item in prod["overrides"]] == ["freeze", "soak"]


def promoted_twice(ruled: Cli) -> None:
    """prod runs v1 (api and worker 1), then v2 (api 2), each after its soak."""
    at(ruled, "2026-03-24T12:00Z").ok("apply", "--env", "prod", "--reason", "one", "--yes")
    release_stage(ruled, "2026-03-24T13:00Z", "2", "api")
    at(ruled, "2026-03-24T15:00Z").ok("apply", "--env", "prod", "--reason", "two", "--yes")


def test_a_rollback_is_never_held_by_soak(ruled: Cli) -> None:
    promoted_twice(ruled)
    release_stage(ruled, "2026-03-24T15:30Z", "3", "api")  # stage moved on: v1's api is gone
    out = at(ruled, "2026-03-24T15:40Z").ok("rollback", "--env", "prod", "--reason", "bad", "--yes")
    assert "Rolled prod back to v1 as v3." in out.splitlines()


def test_a_rollback_goes_through_a_freeze_and_says_so(ruled: Cli) -> None:
    promoted_twice(ruled)
    out = at(ruled, "2026-03-28T10:00Z").ok("rollback", "--env", "prod", "--reason", "bad", "--yes")
    assert out.splitlines()[0] == (
        "prod is frozen (Fri 16:00 - Mon 08:00) until Mon 2026-03-30 08:00 BST: rollbacks are "
        "allowed during a freeze."
    )
    rolled = json.loads(
        at(ruled, "2026-03-28T10:05Z").ok(
            "rollback", "--env", "prod", "--reason", "back", "--to", "v2", "--yes", "--json"
        )
    )
    assert rolled["policy"]["rule"] == "freeze" and rolled["policy"]["held"] is False


def test_a_rollback_refused_in_a_freeze_says_only_why(ruled: Cli) -> None:
    promoted_twice(ruled)
    for extra in (["--to", "v9", "--yes"], []):  # no such version; no terminal to confirm on
        result = at(ruled, "2026-03-28T10:00Z").run(
            "rollback", "--env", "prod", "--reason", "bad", *extra
        )
        assert result.returncode == 2
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1


def test_only_rollback_goes_through_a_freeze_not_a_deploy_of_a_rollback_manifest(
    ruled: Cli,
) -> None:
    promoted_twice(ruled)
    at(ruled, "2026-03-24T15:40Z").ok("rollback", "--env", "prod", "--reason", "bad", "--yes")
    held = at(ruled, "2026-03-28T10:00Z").run("deploy", "--env", "prod", "--version", "v3", "--yes")
    assert held.returncode == HELD
    assert held.stderr.startswith("tf-release: error: prod is frozen (Fri 16:00 - Mon 08:00)")


def test_diff_says_first_whether_a_promotion_is_held_and_until_when(ruled: Cli) -> None:
    at(ruled, "2026-03-24T11:00Z")
    out = ruled.ok("diff", "--env", "prod")
    assert out.splitlines()[0] == (
        "Promotion held: prod is held by soak (stage has run api, worker for 1h of 2h) until "
        "Tue 2026-03-24 12:00 GMT."
    )
    document = json.loads(ruled.ok("diff", "--env", "prod", "--json"))
    assert document["policy"] == {"held": True, "rule": "soak", "until": "2026-03-24T12:00:00.000Z"}
    clear = json.loads(at(ruled, "2026-03-24T12:00Z").ok("diff", "--env", "prod", "--json"))
    assert clear["policy"] == {"held": False, "rule": None, "until": None}


def test_prepare_says_first_that_a_rule_held_it_when_overridden(ruled: Cli) -> None:
    out = at(ruled, "2026-03-24T11:00Z").ok(
        "prepare", "--env", "prod", "--reason", "early",
        "--override", "soak", "--override-reason", "rehearsal",
    )  # fmt: skip
    assert out.splitlines()[0] == (
        "prod is held by soak (stage has run api, worker for 1h of 2h) until "
        "Tue 2026-03-24 12:00 GMT: overridden."
    )
    assert out.splitlines()[1] == "Prepared v1 for prod:"
    document = json.loads(
        at(ruled, "2026-03-24T12:00Z").ok("prepare", "--env", "prod", "--reason", "r", "--json")
    )
    assert document["policy"] == {"held": False, "rule": None, "until": None}


@pytest.mark.parametrize("command", ["prepare", "apply"])
def test_a_held_promotion_under_json_prints_its_policy_then_exits_5(
    ruled: Cli, command: str
) -> None:
    result = at(ruled, "2026-03-24T11:00Z").run(
        command, "--env", "prod", "--reason", "early", "--yes" if command == "apply" else "--force",
        "--json",
    )  # fmt: skip
    assert result.returncode == HELD
    assert json.loads(result.stdout) == {
        "environment": "prod",
        "policy": {"held": True, "rule": "soak", "until": "2026-03-24T12:00:00.000Z"},
    }
    assert len(result.stderr.strip().splitlines()) == 1
    assert prod_keys(ruled) == []


def test_policy_prints_each_rule_and_whether_it_holds_now(ruled: Cli) -> None:
    out = at(ruled, "2026-03-24T11:00Z").ok("policy", "--env", "prod")
    assert out.splitlines() == [
        "Release rules of prod at Tue 2026-03-24 11:00 GMT (Europe/London):",
        "  soak 2h from stage: holds until Tue 2026-03-24 12:00 GMT (stage has run api, worker "
        "for 1h of 2h)",
        "  freeze Fri 16:00 - Mon 08:00: clear",
        "  freeze 2026-12-22 - 2027-01-04: clear",
    ]


def test_policy_at_a_time_says_which_rules_hold_then(ruled: Cli) -> None:
    document = json.loads(
        ruled.ok("policy", "--env", "prod", "--at", "2026-12-25T12:00Z", "--json")
    )
    assert document["at"] == "2026-12-25T12:00:00.000Z"
    held = {(rule["setting"], rule["held"], rule["until"]) for rule in document["rules"]}
    assert held == {
        ("2h from stage", False, None),
        ("Fri 16:00 - Mon 08:00", False, None),
        ("2026-12-22 - 2027-01-04", True, "2027-01-05T00:00:00.000Z"),
    }


def test_an_environment_without_rules_says_so(cli: Cli) -> None:
    assert cli.ok("policy", "--env", "stage").strip() == "stage has no release rules."


@pytest.mark.parametrize(
    ("line", "key"),
    [('soak = "-1h"', "environments.prod.soak"),
     ('timezone = "Mars/Olympus"', "environments.prod.timezone"),
     ('freeze = ["Fri 16:00 -"]', "environments.prod.freeze")],
)  # fmt: skip
def test_a_rule_that_does_not_parse_is_bad_input_naming_its_key(
    cli: Cli, line: str, key: str
) -> None:
    cli.write_config(f'[environments.stage]\npromote_from = "latest"\n\n'
                     f'[environments.prod]\npromote_from = "stage"\n{line}\n')  # fmt: skip
    result = cli.run("status")
    assert result.returncode == 2
    assert f"tf-release.toml: {key}: " in result.stderr


def test_a_soak_behind_a_label_is_bad_input(cli: Cli) -> None:
    cli.write_config('[environments.stage]\npromote_from = "latest"\nsoak = "1h"\n')
    result = cli.run("status")
    assert result.returncode == 2 and "environments.stage.soak: needs promote_from" in result.stderr


def test_a_held_apply_is_summarised_as_held(ruled: Cli) -> None:
    summary = ruled.cwd / "summary.md"
    held = at(ruled, "2026-03-24T11:00Z").run(
        "apply", "--env", "prod", "--reason", "promote", "--yes", "--summary", str(summary)
    )
    assert held.returncode == HELD
    shown = parse(summary.read_text())
    assert shown.headings == ["tf-release apply: prod held"]
    assert shown.fact("outcome").startswith("held: prod is held by soak")


def test_an_overridden_rule_is_in_the_job_summary(ruled: Cli) -> None:
    summary = ruled.cwd / "summary.md"
    at(ruled, "2026-03-24T11:00Z").ok(
        "apply", "--env", "prod", "--reason", "promote", "--yes", "--summary", str(summary),
        "--override", "soak", "--override-reason", "hotfix for INC-42",
    )  # fmt: skip
    shown = parse(summary.read_text())
    assert shown.fact("override") == "soak overridden by moto: hotfix for INC-42"


def test_a_pull_request_comment_says_the_promotion_is_held(ruled: Cli) -> None:
    at(ruled, "2026-03-24T11:00Z")
    shown = parse(ruled.ok("diff", "--env", "prod", "--format", "markdown"))
    assert shown.paragraphs[0] == (
        "Promotion held: prod is held by soak (stage has run api, worker for 1h of 2h) until "
        "Tue 2026-03-24 12:00 GMT."
    )
    assert shown.tables[0][0] == ["image", "from", "to"]
