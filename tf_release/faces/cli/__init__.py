"""The `tf-release` command: parses arguments, calls the flows, prints. Nothing else.

The commands live by what they are for: releasing.py (publish … rollback), looking.py (diff,
verify, history, show, status, board, policy) and upkeep.py (unlock, repair, init, doctor,
iam-policy); what they share, common.py. This module holds the app, its global options, the
order --help lists the commands in, and `main`, which turns every failure into one line.
"""

import os
import signal
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from tf_release import __version__
from tf_release.faces.cli import looking, releasing, upkeep
from tf_release.faces.cli.common import Options, compile_query, error_line
from tf_release.model.errors import (
    DEBUG_VARIABLE,
    BadInput,
    Cancelled,
    ReleaseError,
    crash_report,
)

app = typer.Typer(
    name="tf-release",
    help="Versioned release manifests for Docker images deployed to ECS with Terraform.",
    epilog="Environment: TF_RELEASE_CONFIG (the config file), AWS_PROFILE and AWS_REGION (as "
    "the AWS CLI reads them), TF_RELEASE_NOW (a rehearsal's clock), TF_RELEASE_DEBUG=1 (print "
    "an internal error's traceback).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options of the whole command that, as with the AWS CLI, gh and helm, may also follow the command
GLOBAL_OPTIONS = ("--config", "--profile", "--region", "--query")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"tf-release {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", envvar="TF_RELEASE_CONFIG", help="Path to tf-release.toml.", metavar="FILE"
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="AWS profile to use.", metavar="NAME")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="AWS region (overrides the config).", metavar="REGION"),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            metavar="JMESPATH",
            help="Print only what this JMESPath expression selects from the command's JSON "
            "output (--json), as the AWS CLI's --query does: no jq needed.",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    ctx.obj = Options(config, profile, region, compile_query(query))


# the commands, in the order --help lists them
app.command()(releasing.publish)
app.command()(releasing.retire)
app.command()(releasing.prepare)
app.command()(releasing.deploy)
app.command()(releasing.apply)
app.command()(releasing.rollback)
app.command()(releasing.approve)
app.command()(looking.diff)
app.command()(looking.verify)
app.command()(upkeep.unlock)
app.command()(looking.history)
app.command()(looking.show)
app.command()(looking.status)
app.command("board")(looking.board_page)
app.command()(upkeep.repair)
app.command()(upkeep.init)
app.command("check-config")(upkeep.check_config)
app.command()(upkeep.schema)
app.command()(upkeep.doctor)
app.command("iam-policy")(upkeep.iam_policy)
app.command("policy")(looking.release_policy)
app.command()(upkeep.version)


def global_options_first(
    argv: list[str], own: Mapping[str, set[str]]
) -> tuple[list[str], str | None]:
    """`tf-release status --profile p` as `tf-release --profile p status`: each global option
    (and its value) that follows the command moves before it, unless the command has an option
    of that name itself (`own`: command → its option names; `init --region`); nothing after
    `--` moves. Returns the arguments and the command's name."""
    front: list[str] = []
    rest: list[str] = []
    command = None
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest += [arg, *args]
            break
        name = arg.split("=", 1)[0]
        if command and name in GLOBAL_OPTIONS and name not in own.get(command, set()):
            front.append(arg)
            value = None if "=" in arg else next(args, None)
            if value is not None:
                front.append(value)
            continue
        if (
            command is None
            and not arg.startswith("-")
            and (not rest or rest[-1] not in GLOBAL_OPTIONS)
        ):
            command = arg
        rest.append(arg)
    return front + rest, command


def check_query(args: list[str], command: str | None, own: Mapping[str, set[str]]) -> None:
    """--query filters JSON: refused, before anything runs, where the command was not asked for
    it (every command but iam-policy, whose output is always JSON, takes --json)."""
    if command is None or not any(arg.split("=", 1)[0] == "--query" for arg in args):
        return
    if "--json" in own.get(command, set()) and "--json" not in args:
        raise BadInput("--query filters JSON output: add --json")


def _option_names(group: Any) -> dict[str, set[str]]:
    return {
        name: {option for param in command.params for option in param.opts}
        for name, command in group.commands.items()
    }


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise Cancelled("interrupted by SIGTERM", exit_code=143)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI; every failure ends as one line on stderr and a documented exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    command = typer.main.get_command(app)
    try:
        own = _option_names(command)
        args, named = global_options_first(sys.argv[1:] if argv is None else argv, own)
        check_query(args, named, own)
        code = command.main(args=args, prog_name="tf-release", standalone_mode=False)
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
    error_line(message)
    sys.exit(code)
