"""How a user gets tf-release's Terraform without copying files about: the example stacks'
committed dependency lock files, and terraform/modules/release_manifest by a git `source`.

The lock files were not written by `terraform init` here (that would record only the hash of this
machine's linux_amd64 package, and `terraform init` on macOS, Windows or arm would then refuse the
provider): each names every platform's package, as the registry's SHA256SUMS does (`zh:`), and
each platform's unpacked contents (`h1:`). These tests check they stay that way, and that the
provider this machine installs (TF_RELEASE_TEST_PLUGIN_DIR's mirror) is one they name.

Where the machine cannot install `hashicorp/external`, the module's data source runs in the
stand-in in tests/support/external_provider.py, NOT the real provider (see
`terraform_cli_config`); the stand-in's package cannot match a real lock file, so its block is
taken out of the copy the test initialises (`unlock_stand_in`).
"""

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.project import PROJECT, REGION, ROOT, image
from tests.support.scenes import released
from tests.support.terraform import EXTERNAL, stand_in_serves_external, unlock_stand_in

EXAMPLES = ROOT / "terraform" / "examples"
STACKS = ["ecs_service", "ecs_service_module"]
MODULE = "terraform/modules/release_manifest"
LOCK = ".terraform.lock.hcl"
AWS = "registry.terraform.io/hashicorp/aws"
LEFT_BEHIND = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.backup")

# HashiCorp builds hashicorp/aws 5.x for 14 platforms and hashicorp/external 2.3 for 11; a lock
# file from `terraform providers lock -platform=…` for all of them has an `h1:` each, and the
# registry's SHA256SUMS a `zh:` each. Fewer `h1:` than this: made for one machine.
PLATFORMS = {AWS: 14, EXTERNAL: 11}

# A git identity for the test's own commits; no global or system git config takes part (a
# user's `url.<base>.insteadOf` could send a file:// URL elsewhere).
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "tf-release tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "tf-release tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
    "GIT_TERMINAL_PROMPT": "0",
}


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def git(*args: str, cwd: Path) -> str:
    return run(["git", *args], cwd, env={**os.environ, **GIT_ENV})


@dataclass(frozen=True)
class Locked:
    """One provider's block of a lock file."""

    version: str
    constraints: str | None
    hashes: tuple[str, ...]

    def of_kind(self, kind: str) -> set[str]:
        """The hashes of one kind: "h1" (a package's contents) or "zh" (its zip archive)."""
        return {h for h in self.hashes if h.startswith(f"{kind}:")}


def locked(text: str) -> dict[str, Locked]:
    """The provider blocks of a lock file, by registry address."""
    blocks = {}
    for address, body in re.findall(r'^provider "([^"]+)" \{\n(.*?)^\}', text, re.M | re.S):
        version = re.search(r'^\s*version\s*=\s*"([^"]*)"', body, re.M)
        constraints = re.search(r'^\s*constraints\s*=\s*"([^"]*)"', body, re.M)
        assert version is not None, f"{address} has no version"
        blocks[address] = Locked(
            version=version.group(1),
            constraints=constraints.group(1) if constraints else None,
            hashes=tuple(re.findall(r'"((?:h1|zh):[^"]+)"', body)),
        )
    return blocks


def required_providers(stack: Path) -> dict[str, str]:
    """Registry address → version constraint, from the stack's `required_providers`."""
    text = "\n".join(path.read_text() for path in sorted(stack.glob("*.tf")))
    found = re.findall(r'source\s*=\s*"([^"]+)"\s*\n\s*version\s*=\s*"([^"]+)"', text)
    return {f"registry.terraform.io/{source}": version for source, version in found}


def as_terraform_writes(constraint: str) -> str:
    """`>= 5.0` as the lock file's `constraints` has it: `>= 5.0.0`."""

    def full(match: re.Match[str]) -> str:
        parts = match.group(0).split(".")
        return ".".join(parts + ["0"] * (3 - len(parts)))

    return re.sub(r"\d+(?:\.\d+)*", full, constraint)


def terraform_env(cli_config: Path) -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "TF_CLI_CONFIG_FILE": str(cli_config), "TF_IN_AUTOMATION": "1"}


@pytest.fixture
def terraform_on_path() -> None:
    if shutil.which("terraform") is None:
        pytest.skip("no terraform on PATH")


@pytest.mark.parametrize("stack", STACKS)
def test_each_example_stack_commits_a_lock_file_for_every_platform(stack: str) -> None:
    """Without it, `terraform init` picks the newest provider on the day a user runs it; with
    one made for a single machine, it refuses the provider on every other platform."""
    folder = EXAMPLES / stack
    assert (folder / LOCK).is_file(), f"{folder.relative_to(ROOT)} has no {LOCK}"
    blocks = locked((folder / LOCK).read_text())
    required = required_providers(folder)
    assert set(blocks) == set(required)
    for address, block in blocks.items():
        assert block.constraints == as_terraform_writes(required[address]), address
        assert len(block.of_kind("h1")) >= PLATFORMS[address], address
        assert len(block.of_kind("zh")) >= PLATFORMS[address], address


def test_the_aws_provider_is_locked_alike_in_both_stacks() -> None:
    """A user of either route gets the same aws provider, checked against the same hashes."""
    blocks = [locked((EXAMPLES / stack / LOCK).read_text())[AWS] for stack in STACKS]
    assert all(block == blocks[0] for block in blocks)


def test_the_module_has_no_lock_file() -> None:
    """Terraform reads the lock file of the root module only: one in a module would mislead."""
    assert not (ROOT / MODULE / LOCK).exists()


def test_git_would_commit_the_lock_files() -> None:
    """A fresh clone (CI's, a user's) has them only if .gitignore lets them in, or they are
    tracked already (git check-ignore does not report a tracked file)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [str((EXAMPLES / stack / LOCK).relative_to(ROOT)) for stack in STACKS]
    done = subprocess.run(  # no --verbose: with it, a path a `!pattern` lets in counts too
        ["git", "check-ignore", *paths],
        cwd=ROOT,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, f"ignored by .gitignore:\n{done.stdout}{done.stderr}"


@pytest.mark.terraform
@pytest.mark.parametrize("stack", STACKS)
def test_init_against_the_machines_provider_leaves_the_lock_file_as_committed(
    stack: str, terraform_on_path: None, terraform_cli_config: Path, tmp_path: Path
) -> None:
    """The provider this machine installs must be one the lock file names (else `init` fails),
    and `init` must have nothing to add. In a copy: Terraform writes beside a stack."""
    shutil.copytree(ROOT / "terraform", tmp_path / "terraform", ignore=LEFT_BEHIND)
    folder = tmp_path / "terraform" / "examples" / stack
    env = terraform_env(terraform_cli_config)
    unlock_stand_in(folder)
    if EXTERNAL in required_providers(folder) and stand_in_serves_external():
        run(["terraform", "init", "-input=false", "-backend=false"], folder, env)
        after = locked((folder / LOCK).read_text())
        committed = locked((EXAMPLES / stack / LOCK).read_text())
        assert set(after) == set(committed)  # the stand-in's block is back: the one change
        assert after[AWS] == committed[AWS]
    else:
        run(
            ["terraform", "init", "-input=false", "-backend=false", "-lockfile=readonly"],
            folder,
            env,
        )
        assert (folder / LOCK).read_bytes() == (EXAMPLES / stack / LOCK).read_bytes()


def repository_of_this_checkout(target: Path) -> str:
    """A git repository holding terraform/ as this checkout has it (uncommitted edits of tracked
    files included), so the test also proves a module edited here; returns its commit."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout, or no git on PATH")
    target.mkdir()
    for name in filter(None, git("ls-files", "-z", "--", "terraform", cwd=ROOT).split("\0")):
        if (ROOT / name).is_file():  # a tracked file deleted in the checkout is left out
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    git("init", "--quiet", "--initial-branch=main", cwd=target)
    git("add", "--all", cwd=target)
    git("commit", "--quiet", "--message=tf-release, as checked out", cwd=target)
    git("tag", "v0.0.1", cwd=target)
    return git("rev-parse", "HEAD", cwd=target).strip()


GIT_SOURCE_STACK = """\
module "by_tag" {{
  source      = "git::file://{repo}//{module}?ref=v0.0.1"
  project     = "{project}"
  environment = "stage"
  region      = "{region}"
}}

module "by_commit" {{
  source      = "git::file://{repo}//{module}?ref={commit}"
  project     = "{project}"
  environment = "stage"
  region      = "{region}"
}}

output "images" {{
  value = module.by_tag.images
}}

output "release_version" {{
  value = module.by_commit.version
}}
"""


@pytest.mark.terraform
def test_the_module_installs_from_a_git_source_and_reads_the_release(tf_cli: Cli) -> None:
    """The documented route, `source = "git::https://…/tf-release.git//terraform/modules/
    release_manifest?ref=vX.Y.Z"`, over file:// (offline): Terraform's git getter clones the
    repository, takes the module from its subfolder at a tag or a commit, and its data source
    runs tf-release-manifest (in the stand-in where the real `hashicorp/external` cannot be
    installed) and reads the release the test deployed. Terraform's git getter runs the git
    binary, as the test's own commits do: without git, the test is skipped."""
    repo = tf_cli.cwd / "tf-release-repo"
    commit = repository_of_this_checkout(repo)
    stack = tf_cli.cwd / "git-source-stack"
    stack.mkdir()
    (stack / "main.tf").write_text(
        GIT_SOURCE_STACK.format(
            repo=repo.as_posix(), module=MODULE, commit=commit, project=PROJECT, region=REGION
        )
    )
    released(tf_cli.stores())
    env = {**tf_cli.env, **GIT_ENV}

    run(["terraform", "init", "-input=false"], stack, env)
    installed = json.loads((stack / ".terraform/modules/modules.json").read_text())["Modules"]
    sources = {module["Key"]: module["Source"] for module in installed if module["Key"]}
    assert sources == {
        "by_tag": f"git::file://{repo.as_posix()}//{MODULE}?ref=v0.0.1",
        "by_commit": f"git::file://{repo.as_posix()}//{MODULE}?ref={commit}",
    }
    run(["terraform", "apply", "-input=false", "-auto-approve"], stack, env)
    outputs = json.loads(run(["terraform", "output", "-json"], stack, env))
    assert outputs["images"]["value"] == {
        "api": image("api", "one"),
        "worker": image("worker", "one"),
    }
    assert outputs["release_version"]["value"] == "v1"
