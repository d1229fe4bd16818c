"""tf-release.toml checked where it is written, with no AWS: `check-config` (and the pre-commit
hook that runs it), and the JSON Schema that `init` points editors at (read here by Taplo)."""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import BIN, Cli
from tests.support.project import CONFIG, ROOT

NO_AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens there: a request would fail
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
}
CHANGED = ["diff", "--name-only", "-z", "HEAD"]
UNTRACKED = ["ls-files", "--others", "--exclude-standard", "-z"]
BAD_BUCKET = CONFIG.replace('bucket  = "acme-releases"', 'bucket  = "Acme_Releases"')


def offline(cli: Cli) -> Cli:
    cli.env.update(NO_AWS)
    return cli


def test_check_config_passes_a_good_config_without_asking_aws(cli: Cli) -> None:
    out = offline(cli).ok("check-config")
    assert (
        out == f"{cli.cwd / 'tf-release.toml'}: ok (project catalogue, environments stage, prod)\n"
    )


def test_check_config_fails_a_bad_config_in_one_line(cli: Cli) -> None:
    (cli.cwd / "tf-release.toml").write_text(BAD_BUCKET)
    result = offline(cli).run("check-config", "tf-release.toml")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "tf-release: error: tf-release.toml: bucket: 'Acme_Releases' is not an S3 bucket name: "
        "3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or "
        "digit\n"
    )


def test_check_config_fails_a_terraform_dir_or_var_file_that_is_not_there(cli: Cli) -> None:
    (cli.cwd / "infra").mkdir()
    (cli.cwd / "tf-release.toml").write_text(
        CONFIG.replace(
            'promote_from = "latest"',
            'promote_from = "latest"\nterraform_dir = "infra"\nvar_files = ["stage.tfvars"]',
        )
    )
    result = offline(cli).run("check-config", "tf-release.toml")
    assert result.returncode == 2
    assert result.stderr == (
        "tf-release: error: tf-release.toml: var_files of stage: "
        f"{cli.cwd / 'stage.tfvars'} does not exist\n"
    )
    (cli.cwd / "stage.tfvars").write_text("")
    assert offline(cli).run("check-config", "tf-release.toml").returncode == 0


def test_check_config_checks_every_file_it_is_given(cli: Cli) -> None:
    (cli.cwd / "bad").mkdir()
    (cli.cwd / "bad" / "tf-release.toml").write_text(BAD_BUCKET)
    result = offline(cli).run("check-config", "tf-release.toml", "bad/tf-release.toml", "--json")
    assert result.returncode == 2
    checked = json.loads(result.stdout)
    assert [(entry["path"], entry["ok"]) for entry in checked] == [
        ("tf-release.toml", True),
        ("bad/tf-release.toml", False),
    ]
    assert checked[1]["error"].startswith("bad/tf-release.toml: bucket: 'Acme_Releases'")


def test_schema_config_prints_the_schema_configs_are_checked_against(cli: Cli) -> None:
    schema = json.loads(cli.ok("schema", "config"))
    assert schema["title"] == "tf-release.toml"
    jsonschema.validate({"project": "catalogue", "bucket": "acme-releases"}, schema)
    with pytest.raises(jsonschema.ValidationError, match="'colour' was unexpected"):
        jsonschema.validate({"project": "p", "bucket": "acme-releases", "colour": 1}, schema)
    assert json.loads(cli.ok("schema", "manifest"))["title"]


def test_an_unknown_schema_is_bad_input(cli: Cli) -> None:
    result = cli.run("schema", "configuration")
    assert result.returncode == 2
    assert result.stderr == (
        "tf-release: error: no schema 'configuration': choose one of config, manifest, state, "
        "deployment, version-use, deployment-period, approval\n"
    )


def test_init_points_editors_at_the_schema_it_writes_beside_the_config(cli: Cli) -> None:
    del cli.env["TF_RELEASE_CONFIG"]
    (cli.cwd / "infra").mkdir()
    cli.ok("init", "--project", "p", "--bucket", "acme-releases", "--path", "infra/tf-release.toml")
    first_line = (cli.cwd / "infra" / "tf-release.toml").read_text().splitlines()[0]
    assert first_line == "#:schema ./tf-release.schema.json"
    written = (cli.cwd / "infra" / "tf-release.schema.json").read_text()
    assert written == cli.ok("schema", "config")


def taplo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Taplo, the TOML toolkit behind Even Better TOML, as an editor runs it: it follows the
    `#:schema` line by itself."""
    return subprocess.run(
        [str(BIN / "taplo"), *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_taplo_follows_the_schema_line_init_writes(cli: Cli) -> None:
    del cli.env["TF_RELEASE_CONFIG"]
    (cli.cwd / "tf-release.toml").unlink()
    cli.ok("init", "--project", "p", "--bucket", "acme-releases")
    assert taplo("check", "tf-release.toml", cwd=cli.cwd).returncode == 0
    config = cli.cwd / "tf-release.toml"
    config.write_text(config.read_text().replace('"acme-releases"', '"Acme_Releases"'))
    refused = taplo("check", "tf-release.toml", cwd=cli.cwd)
    assert refused.returncode == 1
    assert '"Acme_Releases" does not match' in refused.stderr


@pytest.fixture(scope="session")
def hook_repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """This checkout as one commit, uncommitted changes included (as `try-repo` would take them),
    at a fixed path and revision: pre-commit then installs the hook's environment once."""
    repository = tmp_path_factory.mktemp("hook") / "tf-release"
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "clone", "-q", "--no-local", str(ROOT), str(repository)], check=True)
    changed = [
        name
        for listing in (CHANGED, UNTRACKED)
        for name in subprocess.run(
            ["git", *listing], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split("\0")
        if name
    ]
    for name in changed:
        if (ROOT / name).is_file():
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repository / name)
        else:
            (repository / name).unlink(missing_ok=True)
    subprocess.run([*git, "add", "-A"], cwd=repository, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "as tested"], cwd=repository,
                   check=True)  # fmt: skip
    revision = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repository, capture_output=True, text=True, check=True
    ).stdout.strip()
    yield repository, revision


def try_hook(
    hook_repository: tuple[Path, str], project: Path, home: Path
) -> subprocess.CompletedProcess[str]:
    repository, revision = hook_repository
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    return subprocess.run(
        [str(BIN / "pre-commit"), "try-repo", str(repository), "tf-release-check-config",
         "--ref", revision, "--all-files"],
        capture_output=True, text=True, cwd=project, timeout=600,
        env={**os.environ, "PRE_COMMIT_HOME": str(home), **NO_AWS},
    )  # fmt: skip


def test_the_pre_commit_hook_passes_a_good_config_and_fails_a_bad_one_in_a_line(
    hook_repository: tuple[Path, str], tmp_path: Path
) -> None:
    home = tmp_path / "pre-commit"  # the environment is installed once, for both runs
    good = tmp_path / "good"
    good.mkdir()
    (good / "tf-release.toml").write_text(CONFIG)
    (good / "README.md").write_text("not a config: the hook leaves it alone\n")
    passed = try_hook(hook_repository, good, home)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "tf-release check-config" in passed.stdout and "Passed" in passed.stdout

    bad = tmp_path / "bad"
    (bad / "infra").mkdir(parents=True)
    (bad / "infra" / "tf-release.toml").write_text(BAD_BUCKET)
    failed = try_hook(hook_repository, bad, home)
    assert failed.returncode == 1
    assert "Failed" in failed.stdout
    assert (
        "tf-release: error: infra/tf-release.toml: bucket: 'Acme_Releases' is not an S3 bucket "
        "name" in failed.stdout
    )
