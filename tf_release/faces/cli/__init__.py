"""The `tf-release` command: parses arguments, calls `release`, prints. Nothing else."""

import os
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from tf_release import __version__, naming
from tf_release.errors import (
    DEBUG_VARIABLE,
    BadInput,
    Cancelled,
    HeldByPolicy,
    ReleaseError,
    crash_report,
)

app = typer.Typer(
    name="tf-release",
    help="Versioned release manifests for Docker images deployed to ECS with Terraform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class Options:
    config: Path | None
    profile: str | None
    region: str | None


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tf-release {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="TF_RELEASE_CONFIG", help="Path to tf-release.toml."),
    ] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile to use.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (overrides the config).")] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    ctx.obj = Options(config, profile, region)


def _stores(ctx: typer.Context, writes: bool = False) -> Any:
    """Load the config and open the stores; boto3 is imported only from here on. A command
    that `writes` runs on the real clock (or a rehearsal's)."""
    from tf_release import clock
    from tf_release.progress import for_terminal
    from tf_release.stores import open_stores

    if writes:
        clock.check_writes()
    return open_stores(_config(ctx), ctx.obj.profile, ctx.obj.region, for_terminal(sys.stderr))


def _config(ctx: typer.Context) -> Any:
    from tf_release.config import find_config, load_config

    opts: Options = ctx.obj
    return load_config(find_config(str(opts.config) if opts.config else None))


# Shared argument types
Env = Annotated[str, typer.Option("--env", "-e", help="Environment name.")]
Reason = Annotated[str, typer.Option("--reason", "-r", help="Why this release is made.")]
Images = Annotated[
    list[str] | None,
    typer.Option("--image", "-i", help="Take only this image (repeatable): a selective update."),
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
    typer.Option("--skip-image-check", help="Do not check that the images still exist in ECR."),
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
        help="Go despite a release rule that holds (soak or freeze; repeatable), with "
        "--override-reason: kept on the deployment record.",
    ),
]
OverrideReason = Annotated[
    str | None,
    typer.Option("--override-reason", help="Why a release rule is overridden (with --override)."),
]
LockTimeout = Annotated[
    float,
    typer.Option("--lock-timeout", min=0, help="Seconds to wait for another deploy to finish."),
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


def _version(text: str | None) -> int | None:
    return None if text is None else naming.parse_version(text)


def _print_json(document: object) -> None:
    import json

    typer.echo(json.dumps(document, indent=2, sort_keys=False))


def _print_changes(changes: Any, out: Any = None) -> None:
    from tf_release import output

    output.changes(output.console(out), changes)


def _live(stores: Any, as_json: bool) -> Any:
    """Where Terraform's and the verification commands' output goes: the terminal, above the
    spinner, or stderr when stdout carries JSON."""
    from tf_release.processes import Output

    out = stores.progress.around(sys.stderr if as_json else sys.stdout)
    return Output(out, stores.progress.around(sys.stderr))


def _deploy_options(
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
    from tf_release import output
    from tf_release.deploy import DeployOptions
    from tf_release.rules import NO_OVERRIDES
    from tf_release.terraform import runner_for

    live = _live(stores, as_json)
    return DeployOptions(
        terraform=runner_for(stores.config, env, live=live),
        confirm=_confirmer(yes, as_json, plan_only),
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


def _overrides(rules: list[str] | None, reason: str | None) -> Any:
    from tf_release.rules import Overrides

    return Overrides.of(rules or (), reason)


def _print_holds(holds: Any, environment: str, ruled: bool) -> None:
    """First of all, whether a release rule holds ENV (and that it was overridden)."""
    for hold in holds:
        typer.echo(f"{hold.describe(environment)}: overridden.")
    if ruled and not holds:
        typer.echo(f"No release rule holds {environment} now.")


def _confirmer(yes: bool, as_json: bool, plan_only: bool = False) -> Any:
    """--yes, or a question on the terminal; with neither, refuse before anything is written."""
    if yes or plan_only:
        return lambda plan: True
    if not sys.stdin.isatty():
        raise BadInput("no terminal to confirm on: pass --yes to deploy without asking")

    def ask(plan: Any) -> bool:
        out = sys.stderr if as_json else sys.stdout
        if plan.terraform is not None:  # Terraform's output came after the announcement: recap
            print(f"Deploy {plan.manifest.name} to {plan.environment}:", file=out)
            _print_changes(plan.changes, out)
            print(f"  Terraform: {plan.terraform.describe()}", file=out)
        try:
            return typer.confirm("Go ahead?", default=False, err=as_json)
        except typer.Abort:  # Ctrl-C (click catches it) or the end of input at the question
            raise KeyboardInterrupt from None  # the deploy records it as cancelled

    return ask


def _summary_file(path: Path | None, off: bool) -> Path | None:
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


def _append_summary(path: Path | None, text: str | None) -> None:
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
def _summarised(path: Path | None, report: Any, stores: Any) -> Iterator[None]:
    """A deploy that fails, is refused (locked) or is interrupted is summarised too, with its
    error's first line; the error then goes on to the usual one line and exit code."""
    try:
        yield
    except BaseException as error:
        if path is not None:
            summary = report.failed(error, _caller(stores))
            _append_summary(path, summary.to_markdown() if summary else None)
        raise


@contextmanager
def _held_as_json(as_json: bool, environment: str) -> Iterator[None]:
    """Under --json, a release rule's refusal is also a document on stdout, for scripts that
    read it; the error line and exit 5 follow as ever."""
    try:
        yield
    except HeldByPolicy as held:
        if as_json:
            _print_json({"environment": environment, "policy": held.policy})
        raise


def _caller(stores: Any) -> str | None:
    """Who ran it, for a summary: None when even that cannot be found out."""
    try:
        return str(stores.caller)
    except ReleaseError:
        return None


def _print_deploy(result: Any, head: str | None = None) -> None:
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
    if plan.terraform is not None:
        typer.echo(f"  Terraform: {plan.terraform.describe()}")
    for check in result.deployment.checks if result.deployment else ():
        typer.echo(f"  Checked: {check['check']}: {check['detail'] or 'ok'} ({check['seconds']} s)")


@app.command()
def publish(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="Image name, e.g. api.")],
    url: Annotated[str, typer.Argument(help="Full image URL with a tag or digest.")],
    label: Annotated[
        str, typer.Option(help="Label to publish under: latest or your own, not an environment.")
    ] = naming.LATEST,
    skip_image_check: SkipImageCheck = False,
) -> None:
    """Step 1: record a freshly pushed image under /{project}/image_ids/{label}/{image}."""
    from tf_release import release

    name = release.publish(
        _stores(ctx, writes=True), image, url, label, check_image=not skip_image_check
    )
    typer.echo(f"Published {name} = {url}")


@app.command()
def retire(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="Image name, e.g. api.")],
    label: Annotated[
        str, typer.Option(help="Label to remove it from: latest or your own, not an environment.")
    ] = naming.LATEST,
    yes: Yes = False,
) -> None:
    """Remove an image from latest (or --label): the next promotion from it removes the image."""
    from tf_release import release

    if not yes and not sys.stdin.isatty():
        raise BadInput(f"no terminal to confirm on: pass --yes to retire {image}")

    def ask(url: str) -> bool:
        if yes:
            return True
        typer.echo(f"{label} has {image} = {url}")
        return typer.confirm(f"Remove {image} from {label}?", default=False)

    stores = _stores(ctx, writes=True)
    url = release.retire(stores, image, label, ask)
    promoting = [
        name for name, env in stores.config.environments.items() if env.promote_from == label
    ]
    after = f"; the next `prepare --env {promoting[0]}` removes it" if promoting else ""
    typer.echo(f"Removed {image} from {label} (was {url}){after}.")


@app.command()
def prepare(
    ctx: typer.Context,
    env: Env,
    reason: Reason,
    image: Images = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Label (SSM) or environment (what it runs) to copy from (default: promote_from).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Create a manifest even if nothing changes.")] = False,
    override: OverrideRules = None,
    override_reason: OverrideReason = None,
    as_json: Json = False,
) -> None:
    """Step 2: create the next release manifest of an environment."""
    from tf_release import release

    overrides = _overrides(override, override_reason)
    stores = _stores(ctx, writes=True)
    with _held_as_json(as_json, env):
        prepared = release.prepare(
            stores, env, reason, image or (), source, force, overrides=overrides
        )
    if as_json:
        _print_json(prepared.to_document())
        return
    _print_holds(prepared.holds, env, stores.config.environment(env).rules.any)
    if prepared.manifest is None:
        typer.echo(f"{env} already runs these images; no manifest created (use --force).")
    elif prepared.reused:
        typer.echo(
            f"{prepared.manifest.name} of {env} already holds these images and never ran; "
            "reusing it (use --force for a new one):"
        )
        _print_changes(prepared.changes)
    else:
        typer.echo(f"Prepared {prepared.manifest.name} for {env}:")
        _print_changes(prepared.changes)


@app.command()
def deploy(
    ctx: typer.Context,
    env: Env,
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="Manifest to deploy (default: newest).")
    ] = None,
    yes: Yes = False,
    plan_only: PlanOnly = False,
    skip_image_check: SkipImageCheck = False,
    lock_timeout: LockTimeout = 0,
    atomic: Atomic = None,
    skip_verify: SkipVerify = False,
    override: OverrideRules = None,
    override_reason: OverrideReason = None,
    as_json: Json = False,
    summary: SummaryFile = None,
    no_summary: NoSummary = False,
) -> None:
    """Step 3: write a manifest's images to SSM, run Terraform, and record the deployment."""
    from tf_release import deploy as deploying
    from tf_release.summary import Report

    number = _version(version)
    overrides = _overrides(override, override_reason)
    markdown = _summary_file(summary, no_summary)
    stores = _stores(ctx, writes=True)
    options = _deploy_options(
        stores,
        env,
        yes=yes,
        as_json=as_json,
        lock_timeout=lock_timeout,
        skip_image_check=skip_image_check,
        atomic=atomic,
        skip_verify=skip_verify,
        plan_only=plan_only,
        overrides=overrides,
    )
    report = Report("deploy", env, version=naming.format_optional_version(number))
    with _summarised(markdown, report, stores), _held_as_json(as_json, env):
        result = deploying.deploy(stores, env, number, replace(options, observe=report.observe))
    _print_json(result.to_document()) if as_json else _print_deploy(result)
    _append_summary(markdown, report.finished(result).to_markdown())


@app.command()
def apply(
    ctx: typer.Context,
    env: Env,
    reason: Reason,
    image: Images = None,
    force: Annotated[bool, typer.Option(help="Deploy even if nothing changes.")] = False,
    yes: Yes = False,
    plan_only: PlanOnly = False,
    skip_image_check: SkipImageCheck = False,
    lock_timeout: LockTimeout = 0,
    atomic: Atomic = None,
    skip_verify: SkipVerify = False,
    override: OverrideRules = None,
    override_reason: OverrideReason = None,
    as_json: Json = False,
    summary: SummaryFile = None,
    no_summary: NoSummary = False,
) -> None:
    """Prepare and deploy in one step: the everyday command."""
    from tf_release import release
    from tf_release.summary import Report

    overrides = _overrides(override, override_reason)
    markdown = _summary_file(summary, no_summary)
    stores = _stores(ctx, writes=True)
    options = _deploy_options(
        stores,
        env,
        yes=yes,
        as_json=as_json,
        lock_timeout=lock_timeout,
        skip_image_check=skip_image_check,
        atomic=atomic,
        skip_verify=skip_verify,
        plan_only=plan_only,
        overrides=overrides,
        reason=reason,
    )
    report = Report("apply", env, reason=reason)
    with _summarised(markdown, report, stores), _held_as_json(as_json, env):
        prepared, result = release.apply(
            stores, env, reason, image or (), force, replace(options, observe=report.observe)
        )
    if as_json:
        document = prepared.to_document()
        document["deployment"] = result.to_document() if result else None
        _print_json(document)
    elif result is None:
        typer.echo(f"{env} already runs these images; nothing to deploy (use --force).")
    else:
        _print_deploy(result)
    done = (
        report.unchanged(f"{env} already runs these images", prepared.changes)
        if result is None
        else report.finished(result)
    )
    _append_summary(markdown, done.to_markdown())


@app.command()
def rollback(
    ctx: typer.Context,
    env: Env,
    reason: Reason,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Version to go back to (default: the last good one before)."),
    ] = None,
    yes: Yes = False,
    skip_image_check: SkipImageCheck = False,
    lock_timeout: LockTimeout = 0,
    atomic: Atomic = None,
    skip_verify: SkipVerify = False,
    as_json: Json = False,
    summary: SummaryFile = None,
    no_summary: NoSummary = False,
) -> None:
    """Deploy an old manifest again, under a new version number."""
    from tf_release import holds, release
    from tf_release.manifest import ImageChanges
    from tf_release.summary import Report

    target = _version(to)
    markdown = _summary_file(summary, no_summary)
    stores = _stores(ctx, writes=True)
    options = _deploy_options(
        stores,
        env,
        yes=yes,
        as_json=as_json,
        lock_timeout=lock_timeout,
        skip_image_check=skip_image_check,
        atomic=atomic,
        skip_verify=skip_verify,
        reason=reason,
    )
    frozen = holds.frozen(stores, stores.config.environment(env))
    if frozen is not None and not as_json:  # said first once it goes ahead, never before an error
        announce = options.announce

        def announce_in_freeze(plan: Any) -> None:
            typer.echo(f"{frozen.describe(env)}: rollbacks are allowed during a freeze.")
            announce(plan)

        options = replace(options, announce=announce_in_freeze)
    report = Report("rollback", env, reason=reason)
    with _summarised(markdown, report, stores):
        rolled = release.rollback(
            stores, env, reason, target, replace(options, observe=report.observe)
        )
    if as_json:
        _print_json(rolled.to_document())
        return
    if rolled.manifest is None or rolled.result is None:
        typer.echo(f"{env} already runs the images of {rolled.target.name}; nothing to roll back.")
    else:
        head = f"Rolled {env} back to {rolled.target.name} as {rolled.manifest.name}."
        _print_deploy(rolled.result, head)
    done = (
        report.unchanged(
            f"{env} already runs the images of {rolled.target.name}",
            ImageChanges(unchanged=dict(rolled.target.images)),
        )
        if rolled.result is None
        else report.finished(rolled.result)
    )
    _append_summary(markdown, done.to_markdown())


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"


@app.command()
def diff(
    ctx: typer.Context,
    env: Env,
    versions: Annotated[
        list[str] | None, typer.Argument(help="Two versions of ENV to compare, e.g. v3 v5.")
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(help="Label or environment to promote from (default: ENV's promote_from)."),
    ] = None,
    as_json: Json = False,
    output: Annotated[
        DiffFormat,
        typer.Option("--format", help="text, or markdown: the changes table, for a PR comment."),
    ] = DiffFormat.text,
    summary: SummaryFile = None,
    no_summary: NoSummary = False,
) -> None:
    """What a promotion would change (ENV against a label), or what changed between versions."""
    from tf_release import views
    from tf_release.summary import diff_markdown

    if as_json and output is not DiffFormat.text:
        raise BadInput("give --json or --format, not both")
    markdown = _summary_file(summary, no_summary)
    document: dict[str, Any] = {}  # what --json adds to the changes: a promotion's policy
    rules = ""  # a promotion's rules, said first
    if versions:
        if against is not None:
            raise BadInput("give two versions (diff --env ENV vA vB) or --against, not both")
        if len(versions) != 2:
            given = len(versions)
            raise BadInput(f"give two versions to compare (diff --env ENV vA vB), not {given}")
        old, new = (naming.parse_version(text) for text in versions)
        changes = views.diff_versions(_stores(ctx), env, old, new)
        title = f"{env} {versions[0]} → {versions[1]}:"
    else:
        found = views.promotion(_stores(ctx), env, against)
        changes, title = found.changes, f"{env} ← {found.source}:"
        document = {"policy": found.policy()}
        if found.hold is not None:
            rules = f"Promotion held: {found.hold.describe(env)}."
        elif found.ruled:
            rules = f"No release rule holds a promotion into {env} now."
    table = diff_markdown(title.removesuffix(":"), changes, rules)
    if as_json:
        _print_json({**changes.to_document(), **document})
    elif output is DiffFormat.markdown:
        typer.echo(table, nl=False)
    else:
        if rules:
            typer.echo(rules)
        typer.echo(title)
        _print_changes(changes)
        if changes.empty:
            typer.echo("  no changes")
    _append_summary(markdown, table)


DRIFT_FOUND = 4  # `verify` saw a difference: not a failure of the tool, but CI must notice


@app.command()
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
    """Is ENV what its record says (SSM, ECR; Terraform, ECS)? Writes nothing; exit 4 on drift."""
    from tf_release import drift
    from tf_release.processes import Output
    from tf_release.terraform import runner_for

    stores = _stores(ctx)
    runner = None
    if terraform:
        errors = stores.progress.around(sys.stderr)  # stdout carries the differences only
        runner = runner_for(stores.config, env, live=Output(errors, errors))
        if runner is None:
            raise BadInput(f"{env} has no terraform_dir: --terraform has nothing to plan")
    report = drift.verify(stores, env, terraform=runner, ecs=ecs)
    if as_json:
        _print_json(report.to_document())
    else:
        from tf_release import output

        output.verification(output.console(), report)
    if report.failed is not None:  # after what was found: the plan could not tell the rest
        _error_line(report.failed)
    if report.drifted:
        raise typer.Exit(DRIFT_FOUND)
    if report.failed is not None:
        raise typer.Exit(1)


@app.command()
def unlock(
    ctx: typer.Context,
    env: Env,
    yes: Yes = False,
    force: Annotated[
        bool,
        typer.Option(help="Clear the lock even though its deploy still runs on this host."),
    ] = False,
) -> None:
    """Clear the lock of a deploy that died; SSM goes back to the deployed images."""
    from tf_release import deploy as deploying

    stores = _stores(ctx, writes=True)
    held = deploying.current_lock(stores, env)
    if held is None:
        typer.echo(f"{env} is not locked.")
        return
    if not force:
        deploying.refuse_if_alive(stores, env, held)
    if not yes:
        if not sys.stdin.isatty():
            raise BadInput("no terminal to confirm on: pass --yes to clear the lock")
        typer.echo(f"{env} is locked: {held.describe()}.")
        if not typer.confirm("Is that deploy dead? Clear the lock?", default=False):
            raise Cancelled("lock left in place")
    lock = deploying.unlock(stores, env, force=force)
    if lock is None:
        typer.echo(f"{env} is not locked.")
        return
    note = lock.partly_applied(env)
    typer.echo(f"Cleared the lock of {lock.describe()}" + (f"; {note}." if note else "."))


@app.command()
def history(
    ctx: typer.Context,
    env: Env,
    limit: Annotated[int, typer.Option(help="How many manifests to show.")] = 20,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """The newest manifests of an environment, with their deployments."""
    from tf_release import views

    entries = views.history(_stores(ctx), env, limit)
    broken = [
        entry.problem
        for entry in entries
        if isinstance(entry, views.MissingManifest) and entry.problem is not None
    ]
    if as_json:
        _print_json([entry.to_document() for entry in entries])
    elif not entries:
        typer.echo(f"{env} has no manifests yet.")
    else:
        from tf_release import output

        output.history(output.console(wide=wide), entries, wide)
    for problem in broken:  # one line each; the history shows the rest
        _error_line(problem)
    if broken:
        raise typer.Exit(1)


@app.command()
def show(
    ctx: typer.Context,
    env: Env,
    version: Annotated[str, typer.Argument(help="Manifest version, e.g. v7.")],
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """One manifest: its images, reason, author and deployments."""
    from tf_release import views

    entry = views.show(_stores(ctx), env, naming.parse_version(version))
    if as_json:
        _print_json(entry.to_document())
        return
    from tf_release import output

    output.manifest(output.console(wide=wide), entry, wide)


@app.command()
def status(
    ctx: typer.Context,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="Environment (default: all).")
    ] = None,
    at: Annotated[str | None, typer.Option(help="What ran at this time (ISO 8601).")] = None,
    as_json: Json = False,
    wide: Wide = False,
) -> None:
    """Which version each environment runs now, or ran at a given time."""
    from tf_release import views

    moment = None if at is None else naming.parse_time(at)
    statuses = views.status(_stores(ctx), env, moment)
    usable = [item for item in statuses if item.problem is None]
    if as_json:
        _print_json([item.to_document() for item in statuses])
    elif usable:
        from tf_release import output

        output.status(output.console(wide=wide), usable, wide)
    broken = [item.problem for item in statuses if item.problem is not None]
    for problem in broken:  # one line each; the other environments are shown above
        _error_line(problem)
    if broken:
        raise typer.Exit(1)


@app.command("board")
def board_page(
    ctx: typer.Context,
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", metavar="FILE", help="The HTML file to write; - writes it to stdout."
        ),
    ] = "release-board.html",
    days: Annotated[int, typer.Option(help="How many days the timeline goes back.")] = 30,
) -> None:
    """One self-contained HTML page: what runs where, what differs, the last days' deploys.
    A broken environment state is drawn as unknown, then named on stderr (exit 1)."""
    from tf_release import board, files

    to_stdout = output == "-"  # a string, so `./-` still names a file
    path = Path(output)
    if not to_stdout:
        files.check_writable(path)
    page = board.gather(_stores(ctx), days)
    if to_stdout:
        typer.echo(board.render(page))
    else:
        files.write_whole(path, board.render(page))
        shown = "nothing deployed yet" if page.empty else f"{len(page.marks)} deployments"
        typer.echo(f"Wrote {output}: {len(page.cards)} environments, {shown} (last {days} days).")
    broken = [card.problem for card in page.cards if card.problem is not None]
    for problem in broken:  # one line each; the page shows the rest
        _error_line(problem)
    if broken:
        raise typer.Exit(1)


@app.command()
def repair(ctx: typer.Context, env: Env, yes: Yes = False, as_json: Json = False) -> None:
    """Rebuild ENV's state from its deployment records and manifests, after confirmation, and
    the indexes that keep `show` and the board fast."""
    from tf_release import repair as repairing

    stores = _stores(ctx, writes=True)
    plan = repairing.plan(stores, env)
    if plan.needed:
        if not yes and not sys.stdin.isatty():
            raise BadInput("no terminal to confirm on: pass --yes to repair the state")
        out = sys.stderr if as_json else sys.stdout
        print(f"The state of {env} is broken: {plan.problem}", file=out)
        print(f"Rebuilt from its deployment records and manifests: {plan.describe()}.", file=out)
        if not yes and not typer.confirm("Write it?", default=False, err=as_json):
            raise Cancelled("state left as it was")
        repairing.repair(stores, plan)
    indexes = repairing.rebuild_indexes(stores, env)
    if as_json:
        _print_json(plan.to_document(repaired=plan.needed) | {"indexes": indexes.to_document()})
        return
    if plan.needed:
        typer.echo(f"Repaired the state of {env}.")
    else:
        typer.echo(f"The state of {env} already matches its deployment records; nothing to repair.")
    typer.echo(
        f"Rebuilt the indexes of {env} from its records: {indexes.versions} version(s), "
        f"{indexes.periods} period(s)."
    )


@app.command()
def init(
    project: Annotated[str | None, typer.Option(help="Project name (SSM and S3 prefix).")] = None,
    bucket: Annotated[str | None, typer.Option(help="S3 bucket for manifests.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: AWS chain).")] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", "-e", help="Environments in promotion order (default: stage prod)."),
    ] = None,
    path: Annotated[Path, typer.Option(help="Where to write it.")] = Path(naming.CONFIG_NAME),
) -> None:
    """Write a commented tf-release.toml from a few questions (or flags, for scripts)."""
    from tf_release import files
    from tf_release.config import load_config, starter_config

    if path.exists():
        raise BadInput(f"{path} already exists; tf-release init does not overwrite it")
    files.check_writable(path)
    asking = sys.stdin.isatty()
    if not asking and (project is None or bucket is None):
        raise BadInput("no terminal to ask on: pass --project and --bucket")
    project = project or typer.prompt("Project name (the SSM and S3 prefix)")
    bucket = bucket or typer.prompt("S3 bucket for manifests and deployment records")
    if region is None and asking:
        region = typer.prompt("AWS region (empty: the AWS default chain)", default="") or None
    environments = env or ["stage", "prod"]
    # before they are written into TOML, where a quote would only say "not valid TOML"
    naming.check_project_name(project)
    for name in environments:
        naming.check_environment_name(name)

    def loads(draft: Path) -> None:
        """The answers are checked like any config before the file takes its name."""
        try:
            load_config(draft)
        except BadInput as error:
            raise BadInput(str(error).replace(str(draft), str(path))) from None

    files.write_whole(path, starter_config(project, bucket, environments, region), loads)
    typer.echo(f"Wrote {path}: environments {' → '.join(['latest', *environments])}.")


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: Json = False,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only", help="Write nothing: skip the bucket's conditional-write probe."
        ),
    ] = False,
) -> None:
    """Check the config, AWS identity and access, and Terraform: one line each, with the fix."""
    from tf_release.doctor import diagnose

    opts: Options = ctx.obj
    checks = []
    config = str(opts.config) if opts.config else None
    for check in diagnose(config, opts.profile, opts.region, read_only):
        checks.append(check)
        if not as_json:
            label = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check.level]
            typer.echo(f"{label} {check.name}: {check.detail}")
    if as_json:
        _print_json([check.to_document() for check in checks])
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


@app.command("iam-policy")
def iam_policy(
    ctx: typer.Context,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            metavar="ENV",
            help="Print the policy of ENV's role_arn instead (its SSM parameters only).",
        ),
    ] = None,
) -> None:
    """Print the least-privilege IAM policy (JSON) for this project, bucket and environments."""
    from tf_release.policy import least_privilege_policy, role_policy

    config = _config(ctx)
    _print_json(least_privilege_policy(config) if role is None else role_policy(config, role))


@app.command("policy")
def release_policy(
    ctx: typer.Context,
    env: Env,
    at: Annotated[
        str | None, typer.Option(help="Whether the rules hold at this time (ISO 8601).")
    ] = None,
    as_json: Json = False,
) -> None:
    """ENV's release rules (soak, freeze windows) and whether each holds now, or at --at."""
    from tf_release import views

    asked = None if at is None else naming.parse_time(at)
    stores = _stores(ctx)
    moment = stores.clock() if asked is None else asked
    verdicts = views.rules(stores, env, moment)
    rules = stores.config.environment(env).rules
    when = views.describe_moment(stores, env, moment)
    if as_json:
        _print_json(
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


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise Cancelled("interrupted by SIGTERM", exit_code=143)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; every failure ends as one line on stderr and a documented exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="tf-release", standalone_mode=False)
    except ReleaseError as error:
        _fail(str(error), error.exit_code)
    except typer.TyperException as error:  # typer's (vendored click's) usage errors
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.format_message(), err=True)
            sys.exit(2)
        ctx = getattr(error, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _fail(error.format_message() + hint, getattr(error, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted", 130)
    except Exception as error:  # the one catch-all: a bug, reported in a line, saved in a file
        if os.environ.get(DEBUG_VARIABLE) == "1":
            traceback.print_exception(error, file=sys.stderr)
        _fail(crash_report(error, "tf-release"), 1)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    _error_line(message)
    sys.exit(code)


def _error_line(message: str) -> None:
    typer.echo(f"tf-release: error: {message.splitlines()[0] if message else 'failed'}", err=True)
