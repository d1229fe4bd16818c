"""Commands that look and change nothing: diff, verify, history, show, status, board, policy."""

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tf_release.faces.cli.common import (
    Env,
    Json,
    NoSummary,
    SummaryFile,
    Wide,
    append_summary,
    error_line,
    fail_after,
    print_changes,
    print_json,
    stores_for,
    summary_file,
)
from tf_release.model import naming
from tf_release.model.errors import (
    BadInput,
)


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"


def diff(
    ctx: typer.Context,
    env: Env,
    versions: Annotated[
        list[str] | None,
        typer.Argument(help="Two versions of ENV to compare, e.g. v3 v5."),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="Label or environment to promote from (default: ENV's promote_from).",
            metavar="LABEL",
        ),
    ] = None,
    as_json: Json = False,
    output: Annotated[
        DiffFormat,
        typer.Option(
            "--format",
            help="text, or markdown: the changes table, for a PR comment.",
            metavar="text|markdown",
        ),
    ] = DiffFormat.text,
    summary: SummaryFile = None,
    no_summary: NoSummary = False,
) -> None:
    """What a promotion would change (ENV against a label), or what changed between versions."""
    from tf_release.faces.summary import diff_markdown
    from tf_release.flows import views

    if as_json and output is not DiffFormat.text:
        raise BadInput("give --json or --format, not both")
    markdown = summary_file(summary, no_summary)
    document: dict[str, Any] = {}  # what --json adds to the changes: a promotion's policy
    rules = ""  # a promotion's rules, said first
    if versions:
        if against is not None:
            raise BadInput("give two versions (diff --env ENV vA vB) or --against, not both")
        if len(versions) != 2:
            given = len(versions)
            raise BadInput(f"give two versions to compare (diff --env ENV vA vB), not {given}")
        old, new = (naming.parse_version(text) for text in versions)
        changes = views.diff_versions(stores_for(ctx), env, old, new)
        title = f"{env} {versions[0]} → {versions[1]}:"
    else:
        found = views.promotion(stores_for(ctx), env, against)
        changes, title = found.changes, f"{env} ← {found.source}:"
        document = {"policy": found.policy()}
        if found.hold is not None:
            rules = f"Promotion held: {found.hold.describe(env)}."
        elif found.ruled:
            rules = f"No release rule holds a promotion into {env} now."
        if found.needs_approval(env):
            rules = f"{rules} {found.needs_approval(env)}".strip()
    table = diff_markdown(title.removesuffix(":"), changes, rules)
    if as_json:
        print_json({**changes.to_document(), **document})
    elif output is DiffFormat.markdown:
        typer.echo(table, nl=False)
    else:
        if rules:
            typer.echo(rules)
        typer.echo(title)
        print_changes(changes)
        if changes.empty:
            typer.echo("  no changes")
    append_summary(markdown, table)


DRIFT_FOUND = 4  # `verify` saw a difference: not a failure of the tool, but CI must notice


def verify(
    ctx: typer.Context,
    env: Env,
    terraform: Annotated[
        bool,
        typer.Option("--terraform", help="Also plan (read only): what would Terraform change?"),
    ] = False,
    ecs: Annotated[
        bool,
        typer.Option("--ecs", help="Also compare what the ECS services run (no waiting)."),
    ] = False,
    as_json: Json = False,
) -> None:
    """Is ENV what its record says (SSM, ECR; Terraform, ECS)? Writes nothing; exit 4 on drift.

    \b
    Examples:
      tf-release verify --env prod
      tf-release verify --env prod --terraform --ecs --json

    Environment: TF_RELEASE_TERRAFORM (for --terraform).
    """
    from tf_release.flows import drift
    from tf_release.terraform.processes import Output
    from tf_release.terraform.runner import runner_for

    stores = stores_for(ctx)
    runner = None
    if terraform:
        errors = stores.progress.around(sys.stderr)  # stdout carries the differences only
        runner = runner_for(stores.config, env, live=Output(errors, errors))
        if runner is None:
            raise BadInput(f"{env} has no terraform_dir: --terraform has nothing to plan")
    report = drift.verify(stores, env, terraform=runner, ecs=ecs)
    if as_json:
        print_json(report.to_document())
    else:
        from tf_release.faces import output

        output.verification(output.console(), report)
    if report.failed is not None:  # after what was found: the plan could not tell the rest
        error_line(report.failed)
    if report.drifted:
        raise typer.Exit(DRIFT_FOUND)
    if report.failed is not None:
        raise typer.Exit(1)


def history(
    ctx: typer.Context,
    env: Env,
    limit: Annotated[
        int, typer.Option("--limit", help="How many manifests to show.", metavar="N")
    ] = 20,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """The newest manifests of an environment, with their deployments."""
    from tf_release.flows import views

    entries = views.history(stores_for(ctx), env, limit)
    broken = [
        entry.problem
        for entry in entries
        if isinstance(entry, views.MissingManifest) and entry.problem is not None
    ]
    if as_json:
        print_json([entry.to_document() for entry in entries])
    elif not entries:
        typer.echo(f"{env} has no manifests yet.")
    else:
        from tf_release.faces import output

        output.history(output.console(wide=wide), entries, wide)
    fail_after(broken)  # the history shows the rest


def show(
    ctx: typer.Context,
    env: Env,
    version: Annotated[str, typer.Argument(help="Manifest version, e.g. v7.")],
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """One manifest: its images, reason, author and deployments."""
    from tf_release.flows import views

    entry = views.show(stores_for(ctx), env, naming.parse_version(version))
    if as_json:
        print_json(entry.to_document())
        return
    from tf_release.faces import output

    output.manifest(output.console(wide=wide), entry, wide)


def status(
    ctx: typer.Context,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="Environment (default: all).", metavar="ENV"),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="What ran at this time (ISO 8601).", metavar="TIME")
    ] = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """Which version each environment runs now, or ran at a given time."""
    from tf_release.flows import views

    moment = None if at is None else naming.parse_time(at)
    statuses = views.status(stores_for(ctx), env, moment)
    usable = [item for item in statuses if item.problem is None]
    if as_json:
        print_json([item.to_document() for item in statuses])
    elif usable:
        from tf_release.faces import output

        output.status(output.console(wide=wide), usable, wide)
    broken = [item.problem for item in statuses if item.problem is not None]
    fail_after(broken)  # the other environments are shown above


def board_page(
    ctx: typer.Context,
    output: Annotated[
        str,
        typer.Option(
            "--output", metavar="FILE", help="The HTML file to write; - writes it to stdout."
        ),
    ] = "release-board.html",
    days: Annotated[
        int, typer.Option("--days", help="How many days the timeline goes back.", metavar="DAYS")
    ] = 30,
    short_output: Annotated[str | None, typer.Option("-o", hidden=True)] = None,
    as_json: Json = False,
) -> None:
    """One self-contained HTML page: what runs where, what differs, the last days' deploys.
    A broken environment state is drawn as unknown, then named on stderr (exit 1).

    \b
    Examples:
      tf-release board
      tf-release board --days 90 --output - > board.html
    """
    from tf_release.faces import board
    from tf_release.model import files

    if short_output is not None:  # helm's and kubectl's -o is a format: no file from a habit
        raise BadInput(f"board writes its page with --output FILE, not -o: --output {short_output}")

    to_stdout = output == "-"  # a string, so `./-` still names a file
    if to_stdout and as_json:
        raise BadInput("--output - prints the page on stdout, where --json would print too")
    path = Path(output)
    if not to_stdout:
        files.check_writable(path)
    page = board.gather(stores_for(ctx), days)
    if to_stdout:
        typer.echo(board.render(page))
    else:
        files.write_whole(path, board.render(page))
        shown = "nothing deployed yet" if page.empty else f"{len(page.marks)} deployments"
        if as_json:
            print_json(
                {"path": output, "days": days, "environments": len(page.cards),
                 "deployments": len(page.marks)}
            )  # fmt: skip
        else:
            typer.echo(
                f"Wrote {output}: {len(page.cards)} environments, {shown} (last {days} days)."
            )
    broken = [card.problem for card in page.cards if card.problem is not None]
    fail_after(broken)  # the page shows the rest


def release_policy(
    ctx: typer.Context,
    env: Env,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Whether the rules hold at this time (ISO 8601).", metavar="TIME"
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """ENV's release rules (soak, freeze windows) and whether each holds now, or at --at."""
    from tf_release.flows import views

    asked = None if at is None else naming.parse_time(at)
    stores = stores_for(ctx)
    moment = stores.clock() if asked is None else asked
    verdicts = views.rules(stores, env, moment)
    rules = stores.config.environment(env).rules
    when = views.describe_moment(stores, env, moment)
    if as_json:
        print_json(
            {
                "environment": env,
                "at": naming.format_time(moment),
                "timezone": rules.timezone,
                "rules": [verdict.to_document() for verdict in verdicts],
            }
        )
        return
    if not verdicts:
        typer.echo(f"{env} has no release rules.")
        return
    typer.echo(f"Release rules of {env} at {when} ({rules.timezone}):")
    for verdict in verdicts:
        if verdict.hold is not None:
            state = f"holds {verdict.hold.ends()} ({verdict.hold.detail})"
        else:
            state = "clear" + (f" ({verdict.note})" if verdict.note else "")
        typer.echo(f"  {verdict.rule} {verdict.setting}: {state}")
