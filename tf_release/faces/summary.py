"""Markdown for CI: a job summary of a deploy, apply, rollback or diff (GitHub's run page shows
`$GITHUB_STEP_SUMMARY`), and diff's changes table for a pull-request comment.

A face, and pure: it renders what the flows return and knows nothing of AWS; the CLI decides
where the text goes. Everything people typed (a reason, an image URL, an error, a check's
output) passes through `escape`, so it can neither break a table nor inject markup.
"""

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tf_release.model import naming
from tf_release.model.errors import (
    BadInput,
    Cancelled,
    HeldByPolicy,
    LockHeld,
    ReleaseError,
    internal_error,
)
from tf_release.model.manifest import ImageChanges

if TYPE_CHECKING:  # types only: rendering needs neither Terraform nor the deploy
    from tf_release.flows.deploy import DeployPlan, DeployResult
    from tf_release.terraform.runner import PlanSummary

NOTHING = "—"  # the "from" of an added image, the "to" of a removed one
BACKSLASHED = "\\`*_[]|~$"  # code, emphasis, links, table cells, strikethrough, GitHub's math
ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}  # raw HTML and autolinks


def escape(text: str) -> str:
    """Text as Markdown shows it, literally and on one line: its first line, control characters
    as spaces, Markdown's punctuation backslashed and `<`, `>`, `&` as HTML entities. Safe in a
    table cell, a list item or a heading (never at the start of a line)."""
    shown = []
    for char in naming.first_line(text):
        if char in ENTITIES:
            shown.append(ENTITIES[char])
        elif char in BACKSLASHED:
            shown.append("\\" + char)
        else:
            shown.append(" " if unicodedata.category(char) == "Cc" else char)
    return "".join(shown).strip()


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured table, every cell escaped."""
    return [
        _row(header),
        _row(["---"] * len(header), escaped=True),
        *(_row(row) for row in rows),
    ]


def _row(cells: Sequence[str], escaped: bool = False) -> str:
    return "| " + " | ".join(cell if escaped else escape(cell) for cell in cells) + " |"


def changes_table(changes: ImageChanges) -> list[str]:
    """Image, from, to: one row per image that changes, then how many stay as they are."""
    rows = (
        [(name, NOTHING, url) for name, url in changes.added.items()]
        + [(name, old, new) for name, (old, new) in changes.changed.items()]
        + [(name, url, NOTHING) for name, url in changes.removed.items()]
    )
    lines = table(("image", "from", "to"), rows) if rows else ["No image changes."]
    if changes.unchanged:
        lines += ["", f"({len(changes.unchanged)} unchanged)"]
    return lines


def diff_markdown(title: str, changes: ImageChanges, rules: str = "") -> str:
    """`diff --format markdown`: a heading naming both sides, whether a release rule holds the
    promotion (a PR comment must not promise what exit 5 will refuse), then the changes table."""
    said = [escape(rules), ""] if rules else []
    lines = [f"### tf-release diff: {escape(title)}", "", *said, *changes_table(changes)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Summary:
    """What one deploy, apply or rollback did, however it ended."""

    command: str
    environment: str
    outcome: str  # succeeded, failed, cancelled, locked, held, planned or unchanged
    version: str | None = None
    reason: str | None = None
    by: str | None = None
    source: str | None = None  # where the images came from: latest, stage@v5, v3 (a rollback)
    detail: str | None = None  # after the outcome: the error, or why nothing was done
    changes: ImageChanges | None = None
    terraform: "PlanSummary | None" = None
    checks: Sequence[Mapping[str, Any]] = ()  # gates.Check documents
    overrides: Sequence[str] = ()  # release rules the deploy went past, as Override.describe()
    approvals: Sequence[str] = ()  # who approved the manifest: "ARN at TIME: reason"

    def to_markdown(self) -> str:
        title = " ".join(part for part in (self.environment, self.version) if part)
        outcome = self.outcome + (f": {self.detail}" if self.detail else "")
        facts = [
            ("environment", self.environment),
            ("version", self.version),
            ("reason", self.reason),
            ("by", self.by),
            ("source", self.source),
            ("outcome", outcome),
            *(("override", override) for override in self.overrides),
            *(("approved by", approval) for approval in self.approvals),
        ]
        if self.terraform is not None:
            facts.append(("terraform", self.terraform.describe()))
            if self.terraform.replaced:
                facts.append(("replaced", ", ".join(self.terraform.replaced)))
        lines = [f"### tf-release {self.command}: {escape(title)} {escape(self.outcome)}", ""]
        lines += [f"- **{name}:** {escape(value)}" for name, value in facts if value]
        if self.changes is not None:
            lines += ["", *changes_table(self.changes)]
        if self.checks:
            lines += ["", *table(("check", "result", "seconds"), _check_rows(self.checks))]
        return "\n".join(lines) + "\n"


def _check_rows(checks: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    rows = []
    for check in checks:
        detail = "; ".join(line.strip() for line in str(check["detail"]).splitlines() if line)
        verdict = "ok" if check["ok"] else "failed"
        rows.append(
            (check["check"], verdict + (f": {detail}" if detail else ""), f"{check['seconds']}")
        )
    return rows


@dataclass
class Report:
    """A deploy's summary in the making: told each plan as the deploy learns it
    (`DeployOptions.observe`), so that a deploy that fails afterwards is still reported."""

    command: str
    environment: str
    reason: str | None = None
    version: str | None = None  # the version asked for, until a plan names it
    plan: "DeployPlan | None" = None

    def observe(self, plan: "DeployPlan") -> None:
        self.plan = plan

    def finished(self, result: "DeployResult") -> Summary:
        """A deploy that ran to its end: succeeded, or planned only (`--plan-only`)."""
        self.plan = result.plan
        deployment = result.deployment
        if deployment is None:
            return self._summary("planned", None, "nothing was deployed (--plan-only)")
        summary = self._summary(deployment.outcome, deployment.started_by, checks=deployment.checks)
        approvals = tuple(
            f"{item['approver']} at {item['approved_at']}"
            + (f": {item['reason']}" if item["reason"] else "")
            for item in deployment.approvals
        )
        overrides = tuple(item.describe() for item in deployment.overrides)
        return replace(summary, overrides=overrides, approvals=approvals)

    def unchanged(self, detail: str, changes: ImageChanges) -> Summary:
        """Nothing was deployed because the environment already runs these images."""
        return Summary(
            self.command,
            self.environment,
            "unchanged",
            reason=self.reason,
            detail=detail,
            changes=changes,
        )

    def failed(self, error: BaseException, by: str | None) -> Summary | None:
        """How a deploy ended that did not finish; None for bad input that stopped it before it
        began (nothing was attempted, and the error line says it all)."""
        if isinstance(error, BadInput) and self.plan is None:
            return None
        if isinstance(error, KeyboardInterrupt):
            return self._summary("cancelled", by, "interrupted")
        if not isinstance(error, Exception):
            return None  # SystemExit and the like: the process is going away
        outcome = "failed"
        if isinstance(error, LockHeld):
            outcome = "locked"
        elif isinstance(error, HeldByPolicy):
            outcome = "held"
        elif isinstance(error, Cancelled):
            outcome = "cancelled"
        message = str(error) if isinstance(error, ReleaseError) else internal_error(error)
        checks = [check.to_document() for check in getattr(error, "checks", ())]
        return self._summary(outcome, by, naming.first_line(message) or outcome, checks=checks)

    def _summary(
        self,
        outcome: str,
        by: str | None,
        detail: str | None = None,
        checks: Sequence[Mapping[str, Any]] = (),
    ) -> Summary:
        plan = self.plan
        manifest = plan.manifest if plan is not None else None
        return Summary(
            self.command,
            self.environment,
            outcome,
            version=manifest.name if manifest else self.version,
            reason=manifest.reason if manifest else self.reason,
            by=by,
            source=manifest.source if manifest else None,
            detail=detail,
            changes=plan.changes if plan is not None else None,
            terraform=plan.terraform if plan is not None else None,
            checks=tuple(checks),
        )
