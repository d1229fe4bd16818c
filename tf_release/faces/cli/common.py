"""What the commands share: the options they declare alike, opening the stores, and printing
plans, holds, deploys and JSON the same way everywhere."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from tf_release.model import naming
from tf_release.model.errors import (
    BadInput,
    HeldByPolicy,
    ReleaseError,
)


@dataclass
class Options:
    config: Path | None
    profile: str | None
    region: str | None
    query: Any = None  # --query, compiled: what print_json prints of its document


def stores_for(ctx: typer.Context, writes: bool = False) -> Any:
    """Load the config and open the stores; boto3 is imported only from here on. A command
    that `writes` runs on the real clock (or a rehearsal's)."""
    from tf_release.faces.progress import for_terminal
    from tf_release.model import clock
    from tf_release.stores.bundle import open_stores

    if writes:
        clock.check_writes()
    return open_stores(config_for(ctx), ctx.obj.profile, ctx.obj.region, for_terminal(sys.stderr))


def config_for(ctx: typer.Context) -> Any:
    from tf_release.model.config import find_config, load_config

    opts: Options = ctx.obj
    return load_config(find_config(str(opts.config) if opts.config else None))


# Shared argument types
Env = Annotated[str, typer.Option("--env", "-e", help="Environment name.", metavar="ENV")]
Reason = Annotated[
    str, typer.Option("--reason", "-r", help="Why this release is made.", metavar="TEXT")
]
Images = Annotated[
    list[str] | None,
    typer.Option(
        "--image",
        "-i",
        help="Take only this image (repeatable): a selective update.",
        metavar="NAME",
    ),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
Wide = Annotated[
    bool, typer.Option("--wide", help="Whole identities, times and reasons, however wide.")
]
PlanOnly = Annotated[
    bool,
    typer.Option("--plan-only", help="Stop after terraform plan; put SSM back, deploy nothing."),
]
SkipImageCheck = Annotated[
    bool,
    typer.Option(
        "--skip-image-check", help="Do not check that the images still exist in their registry."
    ),
]
Atomic = Annotated[
    bool | None,
    typer.Option(
        "--atomic/--no-atomic",
        help="On a failed apply or check, converge back to what ran before "
        "(default: the environment's `atomic`).",
    ),
]
SkipVerify = Annotated[
    bool,
    typer.Option("--skip-verify", help="Emergencies only: skip the verification commands."),
]
OverrideRules = Annotated[
    list[str] | None,
    typer.Option(
        "--override",
        help="Go despite a release rule that holds (soak, freeze or approvals; repeatable), with "
        "--override-reason: kept on the deployment record.",
        metavar="RULE",
    ),
]
OverrideReason = Annotated[
    str | None,
    typer.Option(
        "--override-reason",
        help="Why a release rule is overridden (with --override).",
        metavar="TEXT",
    ),
]
LockTimeout = Annotated[
    float,
    typer.Option(
        "--lock-timeout",
        min=0,
        help="Seconds to wait for another deploy to finish.",
        metavar="SECONDS",
    ),
]
SummaryFile = Annotated[
    Path | None,
    typer.Option(
        "--summary",
        metavar="FILE",
        help="Append a Markdown summary to FILE (default: $GITHUB_STEP_SUMMARY, when set).",
    ),
]
NoSummary = Annotated[
    bool,
    typer.Option(
        "--no-summary", help="Write no Markdown summary, not even to GITHUB_STEP_SUMMARY."
    ),
]
STEP_SUMMARY_VARIABLE = "GITHUB_STEP_SUMMARY"  # GitHub Actions shows this file on the run page


def version_number(text: str | None) -> int | None:
    return None if text is None else naming.parse_version(text)


def compile_query(expression: str | None) -> Any:
    """--query's JMESPath expression, compiled before anything runs; a bad one is bad input."""
    if expression is None:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as error:
        problem = " ".join(str(error).split())
        raise BadInput(f"--query {expression!r} is not a JMESPath expression: {problem}") from None


def print_json(document: object) -> None:
    """JSON on stdout: the document, or what --query selects of it."""
    import json

    context = typer.main.get_current_context(silent=True)
    options = context.find_root().obj if context is not None else None
    if isinstance(options, Options) and options.query is not None:
        document = options.query.search(document)
    typer.echo(json.dumps(document, indent=2, sort_keys=False))


def print_changes(changes: Any, out: Any = None) -> None:
    from tf_release.faces import output

    output.changes(output.console(out), changes)


def live_output(stores: Any, as_json: bool) -> Any:
    """Where Terraform's and the verification commands' output goes: the terminal, above the
    spinner, or stderr when stdout carries JSON."""
    from tf_release.terraform.processes import Output

    out = stores.progress.around(sys.stderr if as_json else sys.stdout)
    return Output(out, stores.progress.around(sys.stderr))


def deploy_options(
    stores: Any,
    env: str,
    *,
    yes: bool,
    as_json: bool,
    lock_timeout: float,
    skip_image_check: bool,
    atomic: bool | None,
    skip_verify: bool,
    plan_only: bool = False,
    overrides: Any = None,
    reason: str | None = None,
) -> Any:
    """How the deploy runs; the environment's Terraform is None without a terraform_dir.
    `reason`: the command's, told apart from the own reason of a manifest a retry reused."""
    from tf_release.faces import output
    from tf_release.flows.deploy import DeployOptions
    from tf_release.model.rules import NO_OVERRIDES
    from tf_release.terraform.runner import runner_for

    live = live_output(stores, as_json)
    return DeployOptions(
        terraform=runner_for(stores.config, env, live=live),
        confirm=confirmer(yes, as_json, plan_only),
        lock_timeout=lock_timeout,
        plan_only=plan_only,
        check_images=not skip_image_check,
        atomic=atomic,
        skip_verify=skip_verify,
        live=live,
        # what it is about to do, before Terraform's output (--yes runs too: CI logs)
        announce=lambda plan: output.intent(output.console(live.out), plan, plan_only, reason),
        overrides=overrides or NO_OVERRIDES,
    )


def overrides_of(rules: list[str] | None, reason: str | None) -> Any:
    from tf_release.model.rules import Overrides

    return Overrides.of(rules or (), reason)


def print_holds(holds: Any, environment: str, ruled: bool) -> None:
    """First of all, whether a release rule holds ENV (and that it was overridden)."""
    for hold in holds:
        typer.echo(f"{hold.describe(environment)}: overridden.")
    if ruled and not holds:
        typer.echo(f"No release rule holds {environment} now.")


def confirmer(yes: bool, as_json: bool, plan_only: bool = False) -> Any:
    """--yes, or a question on the terminal; with neither, refuse before anything is written."""
    if yes or plan_only:
        return lambda plan: True
    if not sys.stdin.isatty():
        raise BadInput("no terminal to confirm on: pass --yes to deploy without asking")

    def ask(plan: Any) -> bool:
        out = sys.stderr if as_json else sys.stdout
        if plan.terraform is not None:  # Terraform's output came after the announcement: recap
            print(f"Deploy {plan.manifest.name} to {plan.environment}:", file=out)
            print_changes(plan.changes, out)
            print(f"  Terraform: {plan.terraform.describe()}", file=out)
        try:
            return typer.confirm("Go ahead?", default=False, err=as_json)
        except typer.Abort:  # Ctrl-C (click catches it) or the end of input at the question
            raise KeyboardInterrupt from None  # the deploy records it as cancelled

    return ask


def summary_file(path: Path | None, off: bool) -> Path | None:
    """Where the Markdown summary goes: --summary, else $GITHUB_STEP_SUMMARY, else nowhere.
    A --summary that names a directory, or a file in no directory, is bad input, refused before
    anything is done; GITHUB_STEP_SUMMARY is the CI's own, and only warned about when written."""
    if path is not None and off:
        raise BadInput("give --summary FILE or --no-summary, not both")
    if off:
        return None
    if path is None:
        named = os.environ.get(STEP_SUMMARY_VARIABLE)
        return Path(named) if named else None
    if path.is_dir():
        raise BadInput(f"--summary {path} is a directory: name a file to append the summary to")
    if not path.parent.is_dir():
        raise BadInput(f"--summary {path}: there is no directory {path.parent}")
    return path


def append_summary(path: Path | None, text: str | None) -> None:
    """Append (never truncate), creating the file; a summary that cannot be written is a
    warning, never the command's failure: the deploy's outcome stands."""
    if path is None or text is None:
        return
    try:
        with path.open("a", encoding="utf-8") as file:
            if file.tell():
                file.write("\n")  # a blank line after what the job wrote before
            file.write(text)
    except OSError as error:
        why = error.strerror or str(error)
        typer.echo(f"tf-release: warning: summary not written to {path}: {why}", err=True)


@contextmanager
def summarised(path: Path | None, report: Any, stores: Any) -> Iterator[None]:
    """A deploy that fails, is refused (locked) or is interrupted is summarised too, with its
    error's first line; the error then goes on to the usual one line and exit code."""
    try:
        yield
    except BaseException as error:
        if path is not None:
            summary = report.failed(error, caller_of(stores))
            append_summary(path, summary.to_markdown() if summary else None)
        raise


@contextmanager
def held_as_json(as_json: bool, environment: str) -> Iterator[None]:
    """Under --json, a release rule's refusal is also a document on stdout, for scripts that
    read it; the error line and exit 5 follow as ever."""
    try:
        yield
    except HeldByPolicy as held:
        if as_json:
            print_json({"environment": environment, "policy": held.policy})
        raise


def caller_of(stores: Any) -> str | None:
    """Who ran it, for a summary: None when even that cannot be found out."""
    try:
        return str(stores.caller)
    except ReleaseError:
        return None


def print_deploy(result: Any, head: str | None = None) -> None:
    """How it ended, Terraform's counts and the checks; the image changes were announced."""
    plan = result.plan
    if head is not None:
        typer.echo(head)
    elif result.deployment is None:
        typer.echo(f"Planned {plan.manifest.name} for {plan.environment}; nothing was deployed.")
    else:
        typer.echo(f"Deployed {plan.manifest.name} to {plan.environment}.")
    for override in result.deployment.overrides if result.deployment else ():
        typer.echo(f"  Override: {override.describe()}")
    for approval in result.deployment.approvals if result.deployment else ():
        said = f": {approval['reason']}" if approval["reason"] else ""
        typer.echo(f"  Approved by {approval['approver']} at {approval['approved_at']}{said}")
    if plan.terraform is not None:
        typer.echo(f"  Terraform: {plan.terraform.describe()}")
    for check in result.deployment.checks if result.deployment else ():
        typer.echo(f"  Checked: {check['check']}: {check['detail'] or 'ok'} ({check['seconds']} s)")


def error_line(message: str) -> None:
    """`tf-release: error: …`, the first line of `message`, on stderr."""
    typer.echo(f"tf-release: error: {message.splitlines()[0] if message else 'failed'}", err=True)


def fail_after(problems: list[str]) -> None:
    """After what could be shown, a line on stderr for each problem, then exit 1 if any."""
    for problem in problems:
        error_line(problem)
    if problems:
        raise typer.Exit(1)
