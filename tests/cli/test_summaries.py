"""CI job summaries as a pipeline meets them: `--summary FILE` (or GitHub's GITHUB_STEP_SUMMARY)
gets Markdown appended by deploy, apply, rollback and diff, however the deploy ends; read back
with a Markdown parser."""

from pathlib import Path

from tests.conftest import Cli
from tests.support.assertions import assert_refused, snapshot
from tests.support.markdown import Document, parse
from tests.support.project import image
from tests.support.scenes import died_holding_the_lock

HOSTILE = "fix | checkout `now` <img src=x onerror=alert(1)> & [x](http://e.vil)"
FAILS = '["sh", "-c", "echo \'<b>|broken|</b>\'; exit 3"]'


def publish(cli: Cli, tag: str, *names: str) -> None:
    for name in names or ("api", "worker"):
        cli.ok("publish", name, image(name, tag))


def read(path: Path) -> Document:
    shown = parse(path.read_text())
    assert shown.injected == set()
    return shown


def with_verify(cli: Cli, *commands: str) -> None:
    cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nverify = [{", ".join(commands)}]\n'
    )


def test_apply_appends_what_it_deployed_by_whom_and_why(cli: Cli) -> None:
    publish(cli, "one")
    out = cli.cwd / "summary.md"
    cli.ok("apply", "-e", "stage", "-r", "first", "--yes", "--summary", str(out))
    shown = read(out)
    assert shown.headings == ["tf-release apply: stage v1 succeeded"]
    assert shown.facts == [
        ("environment", "stage"),
        ("version", "v1"),
        ("reason", "first"),
        ("by", "arn:aws:sts::123456789012:user/moto"),
        ("source", "latest"),
        ("outcome", "succeeded"),
    ]
    assert shown.tables == [
        [
            ["image", "from", "to"],
            ["api", "—", image("api", "one")],
            ["worker", "—", image("worker", "one")],
        ]
    ]


def test_the_summary_is_appended_to_what_the_file_holds(cli: Cli) -> None:
    out = cli.cwd / "summary.md"
    out.write_text("# Release run\n")
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes", "--summary", str(out))
    publish(cli, "two", "api")
    cli.ok("apply", "-e", "stage", "-r", "two", "--yes", "--summary", str(out))
    shown = read(out)
    assert shown.headings == [
        "Release run",
        "tf-release apply: stage v1 succeeded",
        "tf-release apply: stage v2 succeeded",
    ]
    assert shown.tables[1] == [
        ["image", "from", "to"],
        ["api", image("api", "one"), image("api", "two")],
    ]
    assert shown.paragraphs == ["(1 unchanged)"]


def test_github_step_summary_gets_it_with_no_flag_and_no_summary_turns_it_off(cli: Cli) -> None:
    page = cli.cwd / "step-summary.md"
    cli.env["GITHUB_STEP_SUMMARY"] = str(page)
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes", "--no-summary")
    assert not page.exists()
    cli.ok("apply", "-e", "prod", "-r", "promote one", "--yes")
    assert read(page).headings == ["tf-release apply: prod v1 succeeded"]


def test_a_failed_deploy_is_summarised_with_its_error_and_its_checks(cli: Cli) -> None:
    with_verify(cli, '["true"]', FAILS)
    publish(cli, "one")
    out = cli.cwd / "summary.md"
    result = cli.run("apply", "-e", "stage", "-r", HOSTILE, "--yes", "--summary", str(out))
    assert result.returncode == 1
    shown = read(out)
    assert shown.headings == ["tf-release apply: stage v1 failed"]
    assert shown.fact("reason") == HOSTILE
    error = result.stderr.strip().splitlines()[-1].removeprefix("tf-release: error: ")
    assert shown.fact("outcome") == f"failed: {error}"
    [changes, checks] = shown.tables
    assert [row[0] for row in changes] == ["image", "api", "worker"]
    assert [row[:2] for row in checks] == [
        ["check", "result"],
        ["true", "ok"],
        ["sh -c 'echo '\"'\"'<b>|broken|</b>'\"'\"'; exit 3'", "failed: exit 3; <b>|broken|</b>"],
    ]


def test_a_successful_deploy_lists_its_verification_results(cli: Cli) -> None:
    with_verify(cli, '["true"]')
    publish(cli, "one")
    cli.ok("prepare", "-e", "stage", "-r", "one")
    out = cli.cwd / "summary.md"
    cli.ok("deploy", "-e", "stage", "--yes", "--summary", str(out))
    shown = read(out)
    assert shown.fact("outcome") == "succeeded"
    assert shown.fact("reason") == "one"  # the manifest's: deploy takes none
    assert [row[:2] for row in shown.tables[1]] == [["check", "result"], ["true", "ok"]]


def test_a_deploy_refused_by_the_lock_is_summarised_as_locked(cli: Cli) -> None:
    cli.write_config('[environments.prod]\npromote_from = "latest"\n')
    died_holding_the_lock(cli.stores(), "prod")
    out = cli.cwd / "summary.md"
    result = cli.run("deploy", "-e", "prod", "--yes", "--summary", str(out))
    assert result.returncode == 3
    shown = read(out)
    assert shown.headings == ["tf-release deploy: prod locked"]
    error = result.stderr.strip().splitlines()[-1].removeprefix("tf-release: error: ")
    assert shown.fact("outcome") == f"locked: {error}"
    assert error.startswith("prod is locked: ")


def test_rollback_summarises_where_the_images_came_from(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    publish(cli, "two", "api")
    cli.ok("apply", "-e", "stage", "-r", "two", "--yes")
    out = cli.cwd / "summary.md"
    cli.ok("rollback", "-e", "stage", "-r", "two is slow", "--yes", "--summary", str(out))
    cli.ok("rollback", "-e", "stage", "-r", "again", "--yes", "--to", "v1", "--summary", str(out))
    first, again = (parse(part) for part in out.read_text().split("\n### ")[:2])
    assert first.fact("source") == "v1" and first.fact("version") == "v3"
    assert first.tables[0][1] == ["api", image("api", "two"), image("api", "one")]
    assert again.fact("outcome") == "unchanged: stage already runs the images of v1"


def test_apply_with_nothing_to_deploy_is_summarised_as_unchanged(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    out = cli.cwd / "summary.md"
    cli.ok("apply", "-e", "stage", "-r", "again", "--yes", "--summary", str(out))
    shown = read(out)
    assert shown.headings == ["tf-release apply: stage unchanged"]
    assert shown.fact("outcome") == "unchanged: stage already runs these images"
    assert shown.paragraphs == ["No image changes.", "(2 unchanged)"]


def test_plan_only_is_summarised_as_planned(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("prepare", "-e", "stage", "-r", "one")
    out = cli.cwd / "summary.md"
    cli.ok("deploy", "-e", "stage", "--plan-only", "--summary", str(out))
    assert read(out).fact("outcome") == "planned: nothing was deployed (--plan-only)"


def test_bad_input_writes_no_summary(cli: Cli) -> None:
    out = cli.cwd / "summary.md"
    assert_refused(cli, ["deploy", "-e", "nowhere", "--yes", "--summary", str(out)], "nowhere")
    assert not out.exists()


def test_a_summary_path_that_is_a_directory_is_refused_before_anything_is_done(
    cli: Cli,
) -> None:
    publish(cli, "one")
    args = ["apply", "-e", "stage", "-r", "one", "--yes", "--summary", str(cli.cwd)]
    assert_refused(cli, args, f"--summary {cli.cwd} is a directory")
    assert_refused(cli, [*args[:-1], str(cli.cwd / "no" / "s.md")], "there is no directory")
    assert_refused(cli, [*args, "--no-summary"], "not both")


def test_a_summary_that_cannot_be_written_is_a_warning_not_a_failure(cli: Cli) -> None:
    publish(cli, "one")
    result = cli.run("apply", "-e", "stage", "-r", "one", "--yes", "--summary", "/dev/full")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "tf-release: warning: summary not written to /dev/full: No space left on device\n"
    )
    assert "Deployed v1 to stage." in result.stdout.splitlines()
    cli.env["GITHUB_STEP_SUMMARY"] = str(cli.cwd / "gone" / "summary.md")
    result = cli.run("apply", "-e", "prod", "-r", "promote", "--yes")
    assert result.returncode == 0 and "warning: summary not written" in result.stderr


def test_diff_format_markdown_prints_the_changes_table(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    shown = parse(cli.ok("diff", "-e", "prod", "--format", "markdown"))
    assert shown.headings == ["tf-release diff: prod ← stage@v1"]
    assert shown.tables == [
        [
            ["image", "from", "to"],
            ["api", "—", image("api", "one")],
            ["worker", "—", image("worker", "one")],
        ]
    ]


def test_diff_appends_its_table_to_the_summary(cli: Cli) -> None:
    publish(cli, "one")
    cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    out = cli.cwd / "summary.md"
    text = cli.ok("diff", "-e", "prod", "--summary", str(out))
    assert text.startswith("prod ← stage@v1:")
    assert out.read_text() == cli.ok("diff", "-e", "prod", "--format", "markdown")


def test_diff_takes_json_or_a_format_not_both(cli: Cli) -> None:
    before = snapshot(cli)
    assert_refused(cli, ["diff", "-e", "prod", "--json", "--format", "markdown"], "not both")
    assert snapshot(cli) == before


def test_the_summary_has_terraforms_counts_and_replaced_resources(tf_cli: Cli) -> None:
    stack = tf_cli.copy_fixture("local_stack")  # replaces terraform_data.release on a new api
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
        'workspace = "stage"\n'
    )
    publish(tf_cli, "one", "api")
    tf_cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    publish(tf_cli, "two", "api")
    out = tf_cli.cwd / "summary.md"
    tf_cli.ok("apply", "-e", "stage", "-r", "two", "--yes", "--summary", str(out))
    shown = read(out)
    assert shown.fact("terraform") == "1 to add, 0 to change, 1 to destroy"
    assert shown.fact("replaced") == "terraform_data.release"
