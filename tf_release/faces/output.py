"""How the CLI shows things to people: tables and coloured image diffs (rich).

Colour only on a terminal and never under NO_COLOR (rich checks both); off a terminal the width
is generous (or COLUMNS, when set), so that piped output keeps whole image URLs on one line.
Tables fit the width by giving up the reason's tail first: a person rather than an ARN, times
to the minute, a reason's first line; `--wide` shows them whole.
"""

import os
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tf_release.model import naming, state

PIPED_WIDTH = 200
WIDE_WIDTH = 10_000  # --wide: no column is squeezed; the terminal wraps what it must
STYLES = {"+": "green", "~": "yellow", "-": "red", "!": "red"}
OUTCOME_STYLES = {"failed": "red"}  # cancelled and abandoned: yellow
BY = 16  # a person's name longer than this is cut with `…`, so the reason keeps some room


def console(file: TextIO | None = None, wide: bool = False) -> Console:
    file = file or sys.stdout
    width = None  # a terminal's own width (rich reads COLUMNS first)
    if wide:
        width = WIDE_WIDTH
    elif not file.isatty():
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() else PIPED_WIDTH
    return Console(file=file, width=width, highlight=False, soft_wrap=True)


def _who(identity: str, wide: bool) -> str:
    """The person (`alice`); the whole identity, with its role, when wide."""
    return identity if wide else naming.person(identity)


def _when(moment: Any, wide: bool) -> str:
    return naming.format_time(moment) if wide else naming.format_minute(moment)


def _reason(reason: str, wide: bool) -> Text:
    """Its first line, cut to the column with `…`; the whole reason when wide."""
    return Text(reason) if wide else _cut(naming.first_line(reason), wide)


def _cut(text: str, wide: bool) -> Text:
    """On one line, cut to its column with `…`, unless wide."""
    return Text(text) if wide else Text(text, no_wrap=True, overflow="ellipsis")


def intent(out: Console, plan: Any, plan_only: bool = False, asked: str | None = None) -> None:
    """What a deploy is about to do, before Terraform's output: `Deploying v2 to stage (now
    v1): why`, then its image changes. `asked`: the reason `apply` or `rollback` was given,
    which a manifest reused by a retry does not carry."""
    manifest, environment, running = plan.manifest, plan.environment, plan.running
    name = manifest.name
    if plan_only:
        head = f"Planning {name} for {environment}"
    elif manifest.reverts is not None and manifest.reverts == running:
        head = f"Rolling {environment} back to {manifest.source} as {name}"
    else:
        head = f"Deploying {name} to {environment}"
    now = "nothing deployed yet" if running is None else f"now {naming.format_version(running)}"
    out.print(Text(f"{head} ({now}): {naming.first_line(manifest.reason)}"))
    if asked is not None and asked.strip() != manifest.reason:  # a retry reused the manifest
        force = (
            "" if manifest.reverts is not None else " (--force writes a new manifest with yours)"
        )
        out.print(
            Text(
                f"  {name} already held these images and never ran: it keeps its own reason{force}"
            )
        )
    if plan.changes.empty:
        out.print(Text("  no image changes"))
    changes(out, plan.changes)


def changes(out: Console, changes: Any) -> None:
    """`api: …:abc → …:def` per image, coloured by kind, then how many stay as they are."""
    rows = (
        [("+", f"{name}: {url}") for name, url in changes.added.items()]
        + [("~", f"{name}: {old} → {new}") for name, (old, new) in changes.changed.items()]
        + [("-", f"{name}: {url}") for name, url in changes.removed.items()]
    )
    for mark, text in rows:
        out.print(Text(f"  {mark} {text}", style=STYLES[mark]))
    if changes.unchanged:
        out.print(Text(f"  ({len(changes.unchanged)} unchanged)"))


def history(out: Console, entries: list[Any], wide: bool = False) -> None:
    """Newest first; `changes` against the manifest before it (a moved tag's digest counts)."""
    table = Table(box=None, pad_edge=False)
    for header in ("version", "created", "by", "source"):
        table.add_column(header, no_wrap=True, max_width=None if wide or header != "by" else BY)
    for header in ("reason", "changes"):
        table.add_column(header)  # these give way when the width is short
    table.add_column("deployments", no_wrap=not wide)
    for entry in entries:
        if getattr(entry, "manifest", None) is None:  # missing, or cannot be used
            # why it cannot be used goes in the reason's column, which gives way: a long line
            # never squeezes the others away
            row = (
                [entry.describe(), "", "", ""] if entry.missing else ["", "", "", entry.describe()]
            )
            table.add_row(naming.format_version(entry.version), *row, "", "")
            continue
        manifest = entry.manifest
        table.add_row(
            manifest.name,
            _when(manifest.created_at, wide),
            _who(manifest.created_by, wide),
            manifest.source,
            _reason(manifest.reason, wide),
            _cut(_changed_names(entry.changes), wide),
            _deployments(entry, wide),
        )
    out.print(table)


def _deployments(entry: Any, wide: bool) -> str:
    """Every deployment with its time when wide; else how it stands: the newest outcome, or
    the rollback that reverted it."""
    reverted = None
    if entry.reverted_by is not None:
        reverted = f"reverted by {naming.format_version(entry.reverted_by)}"
    tally = getattr(entry, "approvals", None)
    if tally is not None and tally.held and not entry.deployments:
        return f"awaiting approval ({len(tally.counted)} of {tally.needed})"
    if not wide:
        if not entry.deployments:
            return reverted or "not deployed"
        newest = entry.deployments[0]
        marked = " (override)" if entry.overrides_of(newest) else ""
        return reverted or f"{newest.outcome}{marked}"
    shown = ", ".join(
        f"{d.outcome} {_when(d.finished_at, wide)}{_overridden(entry.overrides_of(d))}"
        for d in entry.deployments
    )
    return "; ".join(part for part in (shown or "not deployed", reverted) if part)


def _overridden(overrides: Any) -> str:
    """` (override soak: the reason)`: a deploy that went past a release rule says so."""
    return "".join(f" (override {item.rule}: {item.reason})" for item in overrides)


def _changed_names(changes: Any) -> str:
    """`~api +web -old`: what changed from the manifest before (a digest-only change too);
    blank when none before it could be read (missing from the bucket)."""
    if changes is None:
        return ""
    marks = (
        [f"+{name}" for name in changes.added]
        + [f"~{name}" for name in changes.changed]
        + [f"-{name}" for name in changes.removed]
    )
    return " ".join(marks) or "none"


def status(out: Console, statuses: list[Any], wide: bool = False) -> None:
    """What runs where; below, held locks and newest deploys that did not succeed."""
    table = Table(box=None, pad_edge=False)
    for header in ("environment", "version", "deployed", "by", "newest"):
        table.add_column(header, no_wrap=True, max_width=None if wide or header != "by" else BY)
    for item in statuses:
        deployed = item.deployed
        table.add_row(
            item.environment,
            naming.format_version(deployed.version) if deployed else "-",
            _when(deployed.finished_at, wide) if deployed else "nothing deployed",
            _who(deployed.by, wide) if deployed else "",
            naming.format_version(item.latest_version) if item.latest_version else "",
        )
    out.print(table)
    for item in statuses:
        for override in item.deployed.overrides if item.deployed else ():
            out.print(
                Text(
                    f"{item.environment}: {naming.format_version(item.deployed.version)} went "
                    f"past a release rule: {override.describe()}",
                    style="yellow",
                )
            )
        if item.lock is not None:
            out.print(Text(f"{item.environment}: {item.describe_lock()}", style="yellow"))
        elif item.last_attempt is not None:
            out.print(_attempt(item.environment, item.last_attempt, wide))
        if item.describe_awaiting() is not None:
            out.print(Text(f"{item.environment}: {item.describe_awaiting()}", style="yellow"))


def _attempt(environment: str, attempt: Any, wide: bool) -> Text:
    """`stage: v2 failed at …, started by …: the first line of its error`."""
    text = (
        f"{environment}: {naming.format_version(attempt.version)} {attempt.outcome} at "
        f"{_when(attempt.finished_at, wide)}, started by {_who(attempt.started_by, wide)}"
    )
    if attempt.message:
        text += f": {attempt.message}"
    if attempt.partly_applied:
        text += f"; {state.partly_applied(environment)}"
    return Text(text, style=OUTCOME_STYLES.get(attempt.outcome, "yellow"))


def manifest(out: Console, entry: Any, wide: bool = False) -> None:
    """The facts (the reason whole), then the images; digests shortened unless wide."""
    shown = entry.manifest
    facts = Table(box=None, show_header=False, pad_edge=False)
    facts.add_row("manifest", f"{shown.environment} {shown.name}")
    facts.add_row("reason", shown.reason)
    facts.add_row("created", f"{_when(shown.created_at, wide)} by {_who(shown.created_by, wide)}")
    facts.add_row("source", shown.source)
    if shown.reverts is not None:
        facts.add_row("reverts", naming.format_version(shown.reverts))
    if entry.reverted_by is not None:
        facts.add_row("reverted by", naming.format_version(entry.reverted_by))
    tally = getattr(entry, "approvals", None)
    if tally is not None:
        facts.add_row("approvals", f"{len(tally.counted)} of {tally.needed}")
        for approval in tally.counted:
            said = f": {approval.reason}" if approval.reason else ""
            facts.add_row(
                "approved",
                f"{_when(approval.approved_at, wide)} by {_who(approval.approver, wide)}{said}",
            )
    for deployment in entry.deployments:
        facts.add_row("deployed", f"{deployment.outcome} {_when(deployment.finished_at, wide)}")
        for override in entry.overrides_of(deployment):
            facts.add_row("override", override.describe(whole=True))
    out.print(facts)
    rows = []
    for name, url in sorted(shown.images.items()):
        digest = shown.digests.get(name)
        if digest is not None and not wide:
            digest = naming.short_digest(digest)
        rows.append((name, url, digest or "not pinned"))
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(3)]
    if sum(widths) + 4 > out.width:  # a URL cut in the middle cannot be copied: its own line
        for name, url, digest in rows:
            out.print(Text(f"{name}  {digest}"))
            out.print(Text(f"  {url}"), no_wrap=True, overflow="ignore", crop=False)
        return
    images = Table(box=None, pad_edge=False)
    images.add_column("image", no_wrap=True)
    images.add_column("url", no_wrap=True)
    images.add_column("digest", no_wrap=True)
    for row in rows:
        images.add_row(*row)
    out.print(images)


def verification(out: Console, report: Any) -> None:
    """`verify`: its notes, one line per difference (coloured by kind), then the summary."""
    for note in report.notes:
        out.print(Text(f"note: {note}", style="yellow"))
    for difference in report.differences:
        out.print(Text(difference.line(), style=STYLES[difference.mark]))
    out.print(Text(report.summary(), style="bold red" if report.drifted else "green"))
