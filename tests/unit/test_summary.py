"""The Markdown of CI summaries, read back with a Markdown parser: its structure, and that nothing
people typed (a reason, a URL, an error, a check's output) becomes markup or breaks a table."""

from hypothesis import given
from hypothesis import strategies as st

from tests.support.markdown import parse
from tests.unit.test_terraform import SHOW
from tf_release.faces.summary import Report, Summary, diff_markdown, escape, table
from tf_release.flows.gates import Check
from tf_release.model.errors import GateFailed, LockHeld, TerraformFailed
from tf_release.model.manifest import ImageChanges
from tf_release.terraform.runner import PlanSummary

HOSTILE = "a | b `code` <script>alert(1)</script> &amp; [x](http://e.vil) *em* ~~s~~ $x$ \\|"
ONE_LINE = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1).filter(
    lambda text: len(text.splitlines()) == 1 and text.strip()
)

CHANGES = ImageChanges(
    added={"web": "registry.example.com/web:1"},
    changed={"api": ("registry.example.com/api:1", "registry.example.com/api:2")},
    removed={"old": "registry.example.com/old:9"},
    unchanged={"worker": "registry.example.com/worker:1"},
)


@given(ONE_LINE)
def test_any_line_of_text_is_exactly_one_table_cell_of_plain_text(typed: str) -> None:
    shown = parse("\n".join(table(("image", "from", "to"), [(typed, "x", "y")])))
    assert shown.tables == [[["image", "from", "to"], [typed.strip(), "x", "y"]]]
    assert shown.injected == set()


@given(ONE_LINE)
def test_any_line_of_text_is_exactly_one_fact_of_plain_text(typed: str) -> None:
    shown = parse(Summary("apply", "stage", "succeeded", reason=typed).to_markdown())
    assert shown.fact("reason") == typed.strip()
    assert shown.injected == set()


def test_a_hostile_reason_and_error_show_as_typed_and_inject_nothing() -> None:
    summary = Summary("apply", "stage", "failed", "v3", reason=HOSTILE, detail=HOSTILE)
    shown = parse(summary.to_markdown())
    assert shown.fact("reason") == HOSTILE
    assert shown.fact("outcome") == f"failed: {HOSTILE}"
    assert shown.injected == set()
    assert "<script>" not in summary.to_markdown()


def test_a_reason_of_several_lines_shows_its_first_line_and_an_ellipsis() -> None:
    shown = parse(
        Summary("apply", "stage", "succeeded", reason="fix\n| a | b |\n# h").to_markdown()
    )
    assert shown.fact("reason") == "fix …"
    assert len(shown.headings) == 1 and shown.tables == []


def test_escape_leaves_plain_words_and_image_urls_readable() -> None:
    url = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:1.4.0"
    assert escape(url) == url
    assert escape("promote main at 0a1b2c3") == "promote main at 0a1b2c3"


def test_the_changes_table_has_a_row_per_changed_image_and_counts_the_rest() -> None:
    shown = parse(diff_markdown("prod ← stage@v2", CHANGES))
    assert shown.headings == ["tf-release diff: prod ← stage@v2"]
    assert shown.tables == [
        [
            ["image", "from", "to"],
            ["web", "—", "registry.example.com/web:1"],
            ["api", "registry.example.com/api:1", "registry.example.com/api:2"],
            ["old", "registry.example.com/old:9", "—"],
        ]
    ]
    assert shown.paragraphs == ["(1 unchanged)"]


def test_no_changes_says_so_instead_of_an_empty_table() -> None:
    shown = parse(diff_markdown("prod ← stage@v2", ImageChanges(unchanged={"api": "r/api:1"})))
    assert shown.tables == []
    assert shown.paragraphs == ["No image changes.", "(1 unchanged)"]


def test_a_summary_has_the_facts_terraform_and_the_checks() -> None:
    summary = Summary(
        "deploy", "stage", "succeeded", "v3", reason="api 1.1", by="arn:aws:iam::1:user/alice",
        source="latest", changes=CHANGES, terraform=PlanSummary.from_show_json(SHOW),
        checks=[Check("./smoke stage", True, 1.25, "").to_document()],
    )  # fmt: skip
    shown = parse(summary.to_markdown())
    assert shown.headings == ["tf-release deploy: stage v3 succeeded"]
    assert shown.facts == [
        ("environment", "stage"),
        ("version", "v3"),
        ("reason", "api 1.1"),
        ("by", "arn:aws:iam::1:user/alice"),
        ("source", "latest"),
        ("outcome", "succeeded"),
        ("terraform", "2 to add, 1 to change, 2 to destroy"),
        ("replaced", "aws_ecs_task_definition.web"),
    ]
    assert shown.tables[1] == [["check", "result", "seconds"], ["./smoke stage", "ok", "1.2"]]


def test_the_replaced_resources_are_those_terraform_deletes_and_creates() -> None:
    both_orders = {"address": "aws_lb.main", "change": {"actions": ["create", "delete"]}}
    plan = PlanSummary.from_show_json(
        {"resource_changes": [*SHOW["resource_changes"], both_orders]}
    )
    assert plan.replaced == ("aws_ecs_task_definition.web", "aws_lb.main")


def test_a_failed_gate_reports_its_checks_with_their_output_on_one_line() -> None:
    failed = Check("sh -c 'exit 3'", False, 0.5, "exit 3\n<b>|broken|</b>\nmore")
    error = GateFailed("verification failed (exit 3): more", "verify", [failed])
    summary = Report("deploy", "stage", version="v2").failed(error, "alice")
    assert summary is not None
    shown = parse(summary.to_markdown())
    assert shown.fact("outcome") == "failed: verification failed (exit 3): more"
    assert shown.tables == [
        [
            ["check", "result", "seconds"],
            ["sh -c 'exit 3'", "failed: exit 3; <b>|broken|</b>; more", "0.5"],
        ]
    ]
    assert shown.injected == set()


def test_a_failure_shows_the_first_line_of_its_error() -> None:
    error = TerraformFailed("terraform apply failed (exit 1): Error: quota\nmore detail")
    summary = Report("apply", "stage", reason="r").failed(error, None)
    assert summary is not None
    assert parse(summary.to_markdown()).fact("outcome") == (
        "failed: terraform apply failed (exit 1): Error: quota …"
    )


def test_a_refusal_because_of_the_lock_is_reported_as_locked() -> None:
    summary = Report("deploy", "prod").failed(LockHeld("prod is locked by bob"), "alice")
    assert summary is not None
    assert summary.outcome == "locked" and summary.detail == "prod is locked by bob"
