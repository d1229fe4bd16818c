"""How the CLI shows things to people: tables and coloured image diffs (rich).

Colour only on a terminal and never under NO_COLOR (rich checks both); off a terminal the width
is generous, so that piped output keeps whole image URLs on one line.
"""

import sys
from itertools import pairwise
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tf_release import naming
from tf_release.manifest import described, diff_images

PIPED_WIDTH = 200
STYLES = {"+": "green", "~": "yellow", "-": "red", "!": "red"}
OUTCOME_STYLES = {"failed": "red"}  # cancelled and abandoned: yellow


def console(file: TextIO | None = None) -> Console:
    file = file or sys.stdout
    width = None if file.isatty() else PIPED_WIDTH
    return Console(file=file, width=width, highlight=False, soft_wrap=True)


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


def history(out: Console, entries: list[Any]) -> None:
    """Newest first; `changes` against the manifest before it (a moved tag's digest counts)."""
    table = Table(
        "version", "created", "by", "source", "reason", "changes", "deployments",
        box=None, pad_edge=False,
    )  # fmt: skip
    shown = [entry for entry in entries if not getattr(entry, "missing", False)]
    older = {id(newer): before.manifest for newer, before in pairwise(shown)}
    for entry in entries:
        if getattr(entry, "missing", False):
            name = naming.format_version(entry.version)
            table.add_row(name, f"{name} is missing from the bucket", "", "", "", "", "")
            continue
        manifest = entry.manifest
        deployments = ", ".join(
            f"{d.outcome} {naming.format_time(d.finished_at)}{_overridden(entry.overrides_of(d))}"
            for d in entry.deployments
        )
        if entry.reverted_by is not None:
            deployments += f"; reverted by {naming.format_version(entry.reverted_by)}"
        table.add_row(
            manifest.name,
            naming.format_time(manifest.created_at),
            manifest.created_by,
            manifest.source,
            manifest.reason,
            _changed_names(older.get(id(entry)), manifest),
            deployments or "not deployed",
        )
    out.print(table)


def _overridden(overrides: Any) -> str:
    """` (override soak: the reason)`: a deploy that went past a release rule says so."""
    return "".join(f" (override {item.rule}: {item.reason})" for item in overrides)


def _changed_names(before: Any, after: Any) -> str:
    """`~api +web -old`: what changed from the manifest before (a digest-only change too)."""
    if before is None:
        return ""
    changes = diff_images(
        described(before.images, before.digests), described(after.images, after.digests)
    )
    marks = (
        [f"+{name}" for name in changes.added]
        + [f"~{name}" for name in changes.changed]
        + [f"-{name}" for name in changes.removed]
    )
    return " ".join(marks) or "none"


def status(out: Console, statuses: list[Any]) -> None:
    """What runs where; below, held locks and newest deploys that did not succeed."""
    table = Table("environment", "version", "deployed", "by", "newest", box=None, pad_edge=False)
    for item in statuses:
        deployed = item.deployed
        table.add_row(
            item.environment,
            naming.format_version(deployed.version) if deployed else "-",
            naming.format_time(deployed.finished_at) if deployed else "nothing deployed",
            deployed.by if deployed else "",
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
            out.print(_attempt(item.environment, item.last_attempt))


def _attempt(environment: str, attempt: Any) -> Text:
    """`stage: v2 failed at …, started by …: the first line of its error`."""
    text = (
        f"{environment}: {naming.format_version(attempt.version)} {attempt.outcome} at "
        f"{naming.format_time(attempt.finished_at)}, started by {attempt.started_by}"
    )
    if attempt.message:
        text += f": {attempt.message}"
    return Text(text, style=OUTCOME_STYLES.get(attempt.outcome, "yellow"))


def manifest(out: Console, entry: Any) -> None:
    shown = entry.manifest
    facts = Table(box=None, show_header=False, pad_edge=False)
    facts.add_row("manifest", f"{shown.environment} {shown.name}")
    facts.add_row("reason", shown.reason)
    facts.add_row("created", f"{naming.format_time(shown.created_at)} by {shown.created_by}")
    facts.add_row("source", shown.source)
    if shown.reverts is not None:
        facts.add_row("reverts", naming.format_version(shown.reverts))
    if entry.reverted_by is not None:
        facts.add_row("reverted by", naming.format_version(entry.reverted_by))
    for deployment in entry.deployments:
        facts.add_row(
            "deployed", f"{deployment.outcome} {naming.format_time(deployment.finished_at)}"
        )
        for override in entry.overrides_of(deployment):
            facts.add_row("override", override.describe())
    out.print(facts)
    images = Table("image", "url", "digest", box=None, pad_edge=False)
    for name, url in sorted(shown.images.items()):
        images.add_row(name, url, shown.digests.get(name, "not pinned"))
    out.print(images)


def verification(out: Console, report: Any) -> None:
    """`verify`: its notes, one line per difference (coloured by kind), then the summary."""
    for note in report.notes:
        out.print(Text(f"note: {note}", style="yellow"))
    for difference in report.differences:
        out.print(Text(difference.line(), style=STYLES[difference.mark]))
    out.print(Text(report.summary(), style="bold red" if report.drifted else "green"))
