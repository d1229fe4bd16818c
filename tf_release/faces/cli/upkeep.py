"""Commands that look after a project: unlock, repair, init, check-config, schema, doctor,
iam-policy, version."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from tf_release.faces.cli.common import (
    Env,
    Json,
    Options,
    Yes,
    config_for,
    print_json,
    stores_for,
)
from tf_release.model import naming
from tf_release.model.errors import BadInput, Cancelled, ReleaseError


def unlock(
    ctx: typer.Context,
    env: Env,
    yes: Yes = False,
    force: Annotated[
        bool,
        typer.Option(help="Clear the lock even though its deploy still runs on this host."),
    ] = False,
    as_json: Json = False,
) -> None:
    """Clear the lock of a deploy that died; SSM goes back to the deployed images."""
    from tf_release.flows import deploy as deploying
    from tf_release.flows import locks

    stores = stores_for(ctx, writes=True)
    held = locks.current_lock(stores, env)
    if held is not None:
        if not force:
            locks.refuse_if_alive(stores, env, held)
        if not yes:
            if not sys.stdin.isatty():
                raise BadInput("no terminal to confirm on: pass --yes to clear the lock")
            typer.echo(f"{env} is locked: {held.describe()}.", err=as_json)
            if not typer.confirm(
                "Is that deploy dead? Clear the lock?", default=False, err=as_json
            ):
                raise Cancelled("lock left in place")
        held = deploying.unlock(stores, env, force=force)
    note = held.partly_applied(env) if held is not None else None
    if as_json:
        cleared = None if held is None else {**held.to_document(), "partly_applied": bool(note)}
        print_json({"environment": env, "cleared": cleared})
    elif held is None:
        typer.echo(f"{env} is not locked.")
    else:
        typer.echo(f"Cleared the lock of {held.describe()}" + (f"; {note}." if note else "."))


def repair(ctx: typer.Context, env: Env, yes: Yes = False, as_json: Json = False) -> None:
    """Rebuild ENV's state from its deployment records and manifests, after confirmation, and
    the indexes that keep `show` and the board fast."""
    from tf_release.flows import repair as repairing

    stores = stores_for(ctx, writes=True)
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
        print_json(plan.to_document(repaired=plan.needed) | {"indexes": indexes.to_document()})
        return
    if plan.needed:
        typer.echo(f"Repaired the state of {env}.")
    else:
        typer.echo(f"The state of {env} already matches its deployment records; nothing to repair.")
    typer.echo(
        f"Rebuilt the indexes of {env} from its records: {indexes.versions} version(s), "
        f"{indexes.periods} period(s)."
    )


def init(
    project: Annotated[
        str | None,
        typer.Option("--project", help="Project name (SSM and S3 prefix).", metavar="NAME"),
    ] = None,
    bucket: Annotated[
        str | None, typer.Option("--bucket", help="S3 bucket for manifests.", metavar="BUCKET")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="AWS region (default: AWS chain).", metavar="REGION"),
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            help="Environments in promotion order (default: stage prod).",
            metavar="ENV",
        ),
    ] = None,
    path: Annotated[Path, typer.Option("--path", help="Where to write it.", metavar="FILE")] = Path(
        naming.CONFIG_NAME
    ),
    as_json: Json = False,
) -> None:
    """Write a commented tf-release.toml from a few questions (or flags, for scripts)."""
    from tf_release.model import files, schemas
    from tf_release.model.config import load_config, starter_config

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
    schema = path.parent / naming.CONFIG_SCHEMA_NAME  # where the config's first line points
    files.write_whole(schema, schemas.text("config"))
    if as_json:
        print_json(
            {"path": str(path), "schema": str(schema), "project": project, "bucket": bucket,
             "region": region, "environments": environments}
        )  # fmt: skip
    else:
        typer.echo(f"Wrote {path}: environments {' → '.join(['latest', *environments])}.")
        typer.echo(f"Wrote {schema}, the JSON Schema your editor checks it against.")


def check_config(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Config files to check (default: the one --config or the folders find).",
            metavar="FILE...",
            show_default=False,
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Check tf-release.toml offline: its schema, names, release rules, and that its Terraform
    folders and var files exist. No AWS is asked; the pre-commit hook runs this.

    Examples:

      tf-release check-config

      tf-release check-config infra/tf-release.toml --json
    """
    from tf_release.model.config import find_config, load_config, missing_paths

    opts: Options = ctx.obj
    results = []
    for path in paths or [find_config(str(opts.config) if opts.config else None)]:
        try:
            config = load_config(path)
            problems = [
                problem for env in config.environments.values() for problem in missing_paths(env)
            ]
            problem = f"{path}: {problems[0]}" if problems else None
        except BadInput as error:
            problem = str(error)
        results.append({"path": str(path), "ok": problem is None, "error": problem})
        if problem is not None and not as_json:
            typer.echo(f"tf-release: error: {problem}", err=True)
        elif not as_json:
            typer.echo(f"{path}: ok (project {config.project}, environments "
                       f"{', '.join(config.environments)})")  # fmt: skip
    if as_json:
        print_json(results)
    if not all(result["ok"] for result in results):
        raise typer.Exit(2)


def schema(
    name: Annotated[
        str,
        typer.Argument(
            help=f"Which: {', '.join(naming.SCHEMAS)}.",
            metavar="NAME",
            show_default=False,
        ),
    ] = "config",
) -> None:
    """Print a JSON Schema: the config's (tf-release.toml), or a stored document's.

    Examples:

      tf-release schema config > tf-release.schema.json
    """
    from tf_release.model import schemas

    if name not in naming.SCHEMAS:
        raise BadInput(f"no schema {name!r}: choose one of {', '.join(naming.SCHEMAS)}")
    typer.echo(schemas.text(name), nl=False)


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
    from tf_release.faces.doctor import diagnose

    opts: Options = ctx.obj
    checks = []
    config = str(opts.config) if opts.config else None
    for check in diagnose(config, opts.profile, opts.region, read_only):
        checks.append(check)
        if not as_json:
            label = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check.level]
            typer.echo(f"{label} {check.name}: {check.detail}")
    if as_json:
        print_json([check.to_document() for check in checks])
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


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
    approver: Annotated[
        bool,
        typer.Option(
            "--approver",
            help="Print the policy of an approver instead: read manifests, write only their "
            "own approvals.",
        ),
    ] = False,
) -> None:
    """Print the least-privilege IAM policy (JSON) for this project, bucket and environments."""
    from tf_release.stores.iam import approver_policy, least_privilege_policy, role_policy

    config = config_for(ctx)
    if approver and role is not None:
        raise BadInput("--approver and --role are two policies: ask for one at a time")
    if approver:
        print_json(approver_policy(config))
        return
    print_json(least_privilege_policy(config) if role is None else role_policy(config, role))


def version(ctx: typer.Context, as_json: Json = False) -> None:
    """tf-release's version, and Python's, boto3's and the Terraform's it would run."""
    import platform
    from importlib.metadata import version as installed

    from tf_release import __version__
    from tf_release.terraform.runner import find_binary, terraform_version

    try:
        configured = config_for(ctx).terraform_bin
    except BadInput:  # no tf-release.toml here: the Terraform found without one
        configured = None
    terraform: dict[str, str | None]
    try:
        binary = find_binary(configured)
        terraform = {"path": binary, "version": terraform_version(binary)}
    except ReleaseError as error:
        terraform = {"path": None, "version": None, "error": str(error)}
    document = {
        "tf_release": __version__,
        "python": platform.python_version(),
        "boto3": installed("boto3"),
        "terraform": terraform,
    }
    if as_json:
        print_json(document)
        return
    typer.echo(f"tf-release {__version__}")
    typer.echo(f"Python {document['python']}")
    typer.echo(f"boto3 {document['boto3']}")
    if terraform["version"] is None:
        typer.echo(f"Terraform: none ({terraform['error']})")
    else:
        typer.echo(f"Terraform {terraform['version']} ({terraform['path']})")
