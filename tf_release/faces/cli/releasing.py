"""Commands that release: publish, retire, prepare, deploy, apply, rollback."""

import sys
from dataclasses import replace
from typing import Annotated, Any

import typer

from tf_release.faces.cli.common import (
    Atomic,
    Env,
    Images,
    Json,
    LockTimeout,
    NoSummary,
    OverrideReason,
    OverrideRules,
    PlanOnly,
    Reason,
    SkipImageCheck,
    SkipVerify,
    SummaryFile,
    Yes,
    append_summary,
    deploy_options,
    held_as_json,
    overrides_of,
    print_changes,
    print_deploy,
    print_holds,
    print_json,
    stores_for,
    summarised,
    summary_file,
    version_number,
)
from tf_release.model import naming
from tf_release.model.errors import (
    BadInput,
)


def publish(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="Image name, e.g. api.")],
    url: Annotated[str, typer.Argument(help="Full image URL with a tag or digest.")],
    label: Annotated[
        str,
        typer.Option(
            "--label",
            help="Label to publish under: latest or your own, not an environment.",
            metavar="LABEL",
        ),
    ] = naming.LATEST,
    skip_image_check: SkipImageCheck = False,
    as_json: Json = False,
) -> None:
    """Step 1: record a freshly pushed image under /{project}/image_ids/{label}/{image}.

    \b
    Examples:
      tf-release publish api 123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:3f2a9c1
      tf-release publish api ghcr.io/acme/api:1.4.2 --label rc --json
    """
    from tf_release.flows import release

    name = release.publish(
        stores_for(ctx, writes=True), image, url, label, check_image=not skip_image_check
    )
    if as_json:
        print_json({"image": image, "label": label, "url": url, "parameter": name})
    else:
        typer.echo(f"Published {name} = {url}")


def retire(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="Image name, e.g. api.")],
    label: Annotated[
        str,
        typer.Option(
            "--label",
            help="Label to remove it from: latest or your own, not an environment.",
            metavar="LABEL",
        ),
    ] = naming.LATEST,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Remove an image from latest (or --label): the next promotion from it removes the image."""
    from tf_release.flows import release

    if not yes and not sys.stdin.isatty():
        raise BadInput(f"no terminal to confirm on: pass --yes to retire {image}")

    def ask(url: str) -> bool:
        if yes:
            return True
        typer.echo(f"{label} has {image} = {url}", err=as_json)
        return typer.confirm(f"Remove {image} from {label}?", default=False, err=as_json)

    stores = stores_for(ctx, writes=True)
    url = release.retire(stores, image, label, ask)
    promoting = [
        name for name, env in stores.config.environments.items() if env.promote_from == label
    ]
    if as_json:
        print_json({"image": image, "label": label, "removed": url, "next_removed_by": promoting})
        return
    after = f"; the next `prepare --env {promoting[0]}` removes it" if promoting else ""
    typer.echo(f"Removed {image} from {label} (was {url}){after}.")


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
            metavar="LABEL",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Create a manifest even if nothing changes.")] = False,
    override: OverrideRules = None,
    override_reason: OverrideReason = None,
    as_json: Json = False,
) -> None:
    """Step 2: create the next release manifest of an environment.

    \b
    Examples:
      tf-release prepare --env stage --reason "search fix"
      tf-release prepare --env prod --reason "api only" --image api
    """
    from tf_release.flows import release

    overrides = overrides_of(override, override_reason)
    stores = stores_for(ctx, writes=True)
    with held_as_json(as_json, env):
        prepared = release.prepare(
            stores, env, reason, image or (), source, force, overrides=overrides
        )
    if as_json:
        print_json(prepared.to_document())
        return
    print_holds(prepared.holds, env, stores.config.environment(env).rules.any)
    if prepared.manifest is None:
        typer.echo(f"{env} already runs these images; no manifest created (use --force).")
    elif prepared.reused:
        typer.echo(
            f"{prepared.manifest.name} of {env} already holds these images and never ran; "
            "reusing it (use --force for a new one):"
        )
        print_changes(prepared.changes)
    else:
        typer.echo(f"Prepared {prepared.manifest.name} for {env}:")
        print_changes(prepared.changes)


def deploy(
    ctx: typer.Context,
    env: Env,
    version: Annotated[
        str | None,
        typer.Option("--version", "-v", help="Manifest to deploy (default: newest).", metavar="vN"),
    ] = None,
    yes: Yes = False,
    plan_only: PlanOnly = False,
    skip_image_check: SkipImageCheck = False,
    lock_timeout: LockTimeout = 0,
    atomic: Atomic = None,
    skip_verify: SkipVerify = False,
    override: OverrideRules = None,
    override_reason: OverrideReason = None,
    wait_for_approval: Annotated[
        str | None,
        typer.Option(
            "--wait-for-approval",
            help="Held by the approvals rule: look again, with backoff, for up to DURATION "
            "(30m, 2h); go as soon as the approvals are there, else exit 5.",
            metavar="DURATION",
        ),
    ] = None,
    as_json: Json = False,
    summary: SummaryFile = None,
    no_summary: NoSummary = False,
) -> None:
    """Step 3: write a manifest's images to SSM, run Terraform, and record the deployment.

    \b
    Examples:
      tf-release deploy --env stage --plan-only
      tf-release deploy --env prod --version v7 --yes --lock-timeout 600
      tf-release deploy --env prod --version v7 --yes --wait-for-approval 2h

    Environment: TF_RELEASE_TERRAFORM (the Terraform to run),
    TF_RELEASE_SSM_WRITES_PER_SECOND, GITHUB_STEP_SUMMARY, NO_COLOR.
    """
    from tf_release.faces.summary import Report
    from tf_release.flows import deploy as deploying
    from tf_release.model.rules import parse_duration

    number = version_number(version)
    overrides = overrides_of(override, override_reason)
    try:
        waits = parse_duration(wait_for_approval) if wait_for_approval else None
    except BadInput as error:
        raise BadInput(f"--wait-for-approval: {error}") from None
    markdown = summary_file(summary, no_summary)
    stores = stores_for(ctx, writes=True)
    options = deploy_options(
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
    if waits is not None:
        options = replace(options, wait_for_approval=waits.total_seconds())
    report = Report("deploy", env, version=naming.format_optional_version(number))
    with summarised(markdown, report, stores), held_as_json(as_json, env):
        result = deploying.deploy(stores, env, number, replace(options, observe=report.observe))
    print_json(result.to_document()) if as_json else print_deploy(result)
    append_summary(markdown, report.finished(result).to_markdown())


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
    """Prepare and deploy in one step: the everyday command.

    \b
    Examples:
      tf-release apply --env stage --reason "search fix"
      tf-release apply --env prod --reason "promote stage" --yes --atomic

    Environment: TF_RELEASE_TERRAFORM (the Terraform to run),
    TF_RELEASE_SSM_WRITES_PER_SECOND, GITHUB_STEP_SUMMARY, NO_COLOR.
    """
    from tf_release.faces.summary import Report
    from tf_release.flows import release

    overrides = overrides_of(override, override_reason)
    markdown = summary_file(summary, no_summary)
    stores = stores_for(ctx, writes=True)
    options = deploy_options(
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
    with summarised(markdown, report, stores), held_as_json(as_json, env):
        prepared, result = release.apply(
            stores, env, reason, image or (), force, replace(options, observe=report.observe)
        )
    if as_json:
        document = prepared.to_document()
        document["deployment"] = result.to_document() if result else None
        print_json(document)
    elif result is None:
        typer.echo(f"{env} already runs these images; nothing to deploy (use --force).")
    else:
        print_deploy(result)
    done = (
        report.unchanged(f"{env} already runs these images", prepared.changes)
        if result is None
        else report.finished(result)
    )
    append_summary(markdown, done.to_markdown())


def rollback(
    ctx: typer.Context,
    env: Env,
    reason: Reason,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="Version to go back to (default: the last good one before).", metavar="vN"
        ),
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
    """Deploy an old manifest again, under a new version number.

    \b
    Examples:
      tf-release rollback --env prod --reason "api 1.4 errors"
      tf-release rollback --env prod --reason "back to v5" --to v5 --yes

    Environment: TF_RELEASE_TERRAFORM (the Terraform to run),
    TF_RELEASE_SSM_WRITES_PER_SECOND, GITHUB_STEP_SUMMARY, NO_COLOR.
    """
    from tf_release.faces.summary import Report
    from tf_release.flows import holds, release
    from tf_release.model.manifest import ImageChanges

    target = version_number(to)
    markdown = summary_file(summary, no_summary)
    stores = stores_for(ctx, writes=True)
    options = deploy_options(
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
    with summarised(markdown, report, stores):
        rolled = release.rollback(
            stores, env, reason, target, replace(options, observe=report.observe)
        )
    if as_json:
        print_json(rolled.to_document())
        return
    if rolled.manifest is None or rolled.result is None:
        typer.echo(f"{env} already runs the images of {rolled.target.name}; nothing to roll back.")
    else:
        head = f"Rolled {env} back to {rolled.target.name} as {rolled.manifest.name}."
        print_deploy(rolled.result, head)
    done = (
        report.unchanged(
            f"{env} already runs the images of {rolled.target.name}",
            ImageChanges(unchanged=dict(rolled.target.images)),
        )
        if rolled.result is None
        else report.finished(rolled.result)
    )
    append_summary(markdown, done.to_markdown())


def approve(
    ctx: typer.Context,
    env: Env,
    version: Annotated[str, typer.Argument(help="Manifest version, e.g. v7.")],
    reason: Annotated[
        str | None,
        typer.Option("--reason", "-r", help="Why you approve it (or revoke).", metavar="TEXT"),
    ] = None,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Take your approval back (a revocation is kept).")
    ] = False,
    as_json: Json = False,
) -> None:
    """Approve ENV's manifest vN as yourself (from STS), for its approvals rule; someone other
    than its author must. Written once beside the manifest; --revoke takes it back.

    \b
    Examples:
      tf-release approve --env prod v7 --reason "reviewed the plan"
      tf-release approve --env prod v7 --revoke --reason "wrong worker image"
    """
    from tf_release.flows import approvals

    number = naming.parse_version(version)
    stores = stores_for(ctx, writes=True)
    act = approvals.revoke if revoke else approvals.approve
    done = act(stores, env, number, reason or "")
    tally = done.tally
    if as_json:
        print_json(
            {"environment": env, "version": version, "revoked": revoke}
            | done.approval.shown()
            | {"approvals": tally.to_document() if tally else None}
        )
        return
    did = "Took back your approval of" if revoke else "Approved"
    typer.echo(f"{did} {version} of {env} as {done.approval.approver}.")
    if tally is None:
        typer.echo(f"  {env} needs no approvals.")
    elif tally.held:
        typer.echo(f"  It has {len(tally.counted)} of the {tally.needed} approval(s) it needs.")
    else:
        typer.echo(f"  It has the {tally.needed} approval(s) it needs: "
                   f"`tf-release deploy --env {env} --version {version}`")  # fmt: skip
