"""What the manual (README.md, then the pages of docs/) shows is what the tool does: every
command example runs, in order, against a moto server (with real Terraform where the
quickstart's config has it); the CI recipes run; each troubleshooting message is the one the
tool prints in that situation. Each example is read from the page that shows it.

Lines of other programs (`aws s3 mb`, `docker push`, `pip install`) are the reader's own set-up;
the tests do their part through moto instead (the bucket, the images in ECR).
"""

import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import BIN, Cli
from tests.e2e.test_interrupts_and_locks import deploy_in_apply, slow_project
from tests.support.faults import FaultProxy, Rule
from tests.support.iam import enforce_iam, user_with
from tests.support.markdown import parse
from tests.support.project import BUCKET, ECR_REGISTRY, ROOT, push_image
from tests.support.scenes import died_holding_the_lock, holding_the_lock, next_prepared, released
from tests.support.terraform import garbled_show

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # the order examples run in
MANUAL = "\n".join(page.read_text() for page in PAGES)
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
OUTPUT = (ROOT / "docs" / "output.md").read_text()
POLICY = (ROOT / "docs" / "release-policy.md").read_text()
BOARD = (ROOT / "docs" / "board.md").read_text()
TERRAFORM = (ROOT / "docs" / "terraform.md").read_text()
CI = (ROOT / "docs" / "ci.md").read_text()
TROUBLESHOOTING = (ROOT / "docs" / "troubleshooting.md").read_text()
PYTHON = (ROOT / "docs" / "python-api.md").read_text()
ECR_URL = re.compile(re.escape(ECR_REGISTRY) + r"/([a-z0-9._/-]+):([\w.-]+)")
ASKS = ("deploy", "apply", "rollback")  # on a terminal these ask; the test answers --yes


def blocks(page: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page, flags=re.DOTALL)


def block(page: str, language: str, containing: str) -> str:
    [found] = [text for text in blocks(page, language) if containing in text]
    return found


def tf_release_lines(text: str) -> list[str]:
    """The lines of a shell snippet that run tf-release (comments and other programs left out)."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if re.match(r"(echo .*\| )?tf-release", line)]


def push_images(cli: Cli, text: str) -> None:
    """What CI's `docker push` would have done for every ECR image the text names."""
    for repository, tag in set(ECR_URL.findall(text)):
        push_image(cli.client("ecr"), repository, tag)


def shell_env(cli: Cli, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment, with the installed console scripts on PATH as for a user."""
    return {**cli.env, "PATH": f"{BIN}{os.pathsep}{cli.env['PATH']}", **(extra or {})}


def run_line(cli: Cli, line: str, env: dict[str, str] | None = None) -> str:
    if "|" in line or "$" in line:  # a pipeline or shell variables: as a shell runs it
        done = subprocess.run(
            ["bash", "-c", line], env=shell_env(cli, env), cwd=cli.cwd,
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        return done.stdout
    args = shlex.split(line)[1:]
    if args[0] in ASKS and "--yes" not in args and "--plan-only" not in args:
        args.append("--yes")
    result = cli.run(*args)
    assert result.returncode == 0, f"{line}\n{result.stderr}"
    return result.stdout


def test_the_configuration_reference_loads(cli: Cli) -> None:
    config = cli.cwd / "tf-release.toml"
    config.write_text(block(CONFIGURATION, "toml", "backend_config"))
    assert cli.ok("iam-policy")


def test_the_iam_policy_shown_is_the_one_printed_for_the_configuration_reference(
    cli: Cli,
) -> None:
    (cli.cwd / "tf-release.toml").write_text(block(CONFIGURATION, "toml", "backend_config"))
    shown = block(CONFIGURATION, "json", '"Statement"')
    assert json.loads(cli.ok("iam-policy")) == json.loads(shown)


def test_the_starter_config_of_init_matches_the_quickstart_but_for_terraform(cli: Cli) -> None:
    [init] = [line for line in tf_release_lines(README) if line.startswith("tf-release init")]
    (cli.cwd / "tf-release.toml").unlink()
    del cli.env["TF_RELEASE_CONFIG"]
    cli.ok(*shlex.split(init)[1:])
    quickstart = tomllib.loads(block(README, "toml", "terraform/examples/ecs_service"))
    for environment in quickstart["environments"].values():
        del environment["terraform_dir"], environment["workspace"]
    assert tomllib.loads((cli.cwd / "tf-release.toml").read_text()) == quickstart


def test_every_command_example_runs_in_order(
    tf_cli: Cli, cli_config_without_external: Path
) -> None:
    """The quickstart (after `init`, the reader edits the file into the config shown), on a
    machine whose Terraform can install only the aws provider, then every command example of the
    README, then those of docs/ (the board's, tf-release-manifest's)."""
    tf_cli.env["TF_CLI_CONFIG_FILE"] = str(cli_config_without_external)
    (tf_cli.cwd / "tf-release.toml").unlink()
    del tf_cli.env["TF_RELEASE_CONFIG"]
    push_images(tf_cli, MANUAL)
    outputs = {}
    for line in tf_release_lines("\n".join(blocks(MANUAL, "sh"))):
        outputs[line] = run_line(tf_cli, line)
        if line.startswith("tf-release init"):
            (tf_cli.cwd / "tf-release.toml").write_text(
                block(README, "toml", "terraform/examples/ecs_service")
            )
    first = json.loads(tf_cli.ok("history", "-e", "stage", "--limit", "99", "--json"))[-1]
    assert first["version"] == "v1"  # the quickstart's first apply deployed it: none wasted
    assert [d["outcome"] for d in first["deployments"]] == ["succeeded"]
    [manifest_line] = [line for line in outputs if "tf-release-manifest" in line]
    shown = re.search(r"prints `(\{.*), …\}`", TERRAFORM)
    assert shown is not None
    expected = ".*?".join(re.escape(part) for part in shown.group(1).split("…"))
    assert re.match(expected, outputs[manifest_line]), outputs[manifest_line]
    assert len(outputs) >= 25


def test_the_github_actions_recipe_runs(cli: Cli) -> None:
    workflow = yaml.safe_load(block(CI, "yaml", "Release to stage"))
    image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:0a1b2c3"
    push_images(cli, image)
    ran = []
    for name, job in workflow["jobs"].items():  # stage, then prod (needs: stage)
        page = cli.cwd / f"{name}-summary.md"  # what Actions shows on the job's page
        for step in job["steps"]:
            env = {"GITHUB_SHA": "0a1b2c3d", **{k: image for k in step.get("env", {})}}
            for line in tf_release_lines(step.get("run", "")):
                run_line(cli, line, {**env, "GITHUB_STEP_SUMMARY": str(page)})
                ran.append(line)
        summary = parse(page.read_text())
        assert summary.headings == [f"tf-release apply: {name} v1 succeeded"]
        [_, (name, before, after)] = summary.tables[0]  # the image pinned to its digest
        assert (name, before) == ("api", "—") and after.startswith(image.split(":0")[0] + "@")
    assert len(ran) == 3
    [stage, prod] = json.loads(cli.ok("status", "--json"))
    assert stage["version"] == "v1" and prod["version"] == "v1"
    assert stage["images"] == prod["images"] == {"api": image}


def test_the_pull_request_comment_recipe_prints_the_table_shown(cli: Cli) -> None:
    """Stage runs api 1.1.0 (its v2), prod 1.0.0; the recipe's `tf-release diff` line, as the
    job's shell runs it, writes the comment docs/ci.md shows (`…` a digest)."""
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    push_images(cli, f"{registry}/api:1.0.0 {registry}/api:1.1.0 {registry}/worker:1.0.0")
    cli.ok("publish", "worker", f"{registry}/worker:1.0.0")
    cli.ok("publish", "api", f"{registry}/api:1.0.0")
    cli.ok("apply", "--env", "stage", "--reason", "1.0.0", "--yes")
    cli.ok("apply", "--env", "prod", "--reason", "1.0.0", "--yes")
    cli.ok("publish", "api", f"{registry}/api:1.1.0")
    cli.ok("apply", "--env", "stage", "--reason", "api 1.1.0", "--yes")
    workflow = yaml.safe_load(block(CI, "yaml", "gh pr comment"))
    steps = workflow["jobs"]["diff"]["steps"]
    [line] = [line for step in steps for line in tf_release_lines(step.get("run", ""))]
    done = subprocess.run(
        ["bash", "-c", line], env=shell_env(cli), cwd=cli.cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    written = (cli.cwd / line.rsplit("> ", 1)[1]).read_text()
    shown = block(CI, "markdown", "tf-release diff:")
    assert re.fullmatch(".+".join(map(re.escape, shown.split("…"))), written), written


def run_make(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    """A target of docs/ci.md's Makefile (written to the project folder first)."""
    (cli.cwd / "Makefile").write_text(block(CI, "make", "release-stage:"))
    return subprocess.run(
        ["make", "--no-print-directory", *args], env=shell_env(cli), cwd=cli.cwd,
        capture_output=True, text=True,
    )  # fmt: skip


def test_the_make_recipe_runs(cli: Cli) -> None:
    images = [f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:{tag}" for tag in ("1", "2")]
    push_images(cli, " ".join(images))

    def make(*args: str) -> None:
        done = run_make(cli, *args)
        assert done.returncode == 0, done.stdout + done.stderr

    for image in images:
        make("release-stage", f"IMAGE={image}", "REASON=api")
        make("promote", "REASON=api")
    make("rollback-prod", "REASON=api 2 is broken")
    [prod] = json.loads(cli.ok("status", "--env", "prod", "--json"))
    assert prod["version"] == "v3" and prod["images"] == {"api": images[0]}


def released_over_local_stack(cli: Cli) -> None:
    """stage and prod over local_stack, a workspace each, both running api "one": the scene a
    nightly drift check finds."""
    stack = cli.copy_fixture("local_stack")
    cli.write_config(
        "".join(
            f'[environments.{env}]\npromote_from = "{source}"\nterraform_dir = "{stack}"\n'
            f'workspace = "{env}"\n\n'
            for env, source in (("stage", "latest"), ("prod", "stage"))
        )
    )
    cli.ok("publish", "api", "registry.example.com/api:one")
    for env in ("stage", "prod"):
        cli.ok("apply", "--env", env, "--reason", "one", "--yes")


def test_the_drift_check_recipes_run(tf_cli: Cli) -> None:
    """The nightly workflow's run-steps, once per matrix environment, then `make -k drift-check`:
    exit 0 while everything agrees; a hand-edited parameter fails the make target, naming it."""
    released_over_local_stack(tf_cli)
    workflow = yaml.safe_load(block(CI, "yaml", "schedule:"))
    ran = []
    for job in workflow["jobs"].values():
        for environment in job["strategy"]["matrix"]["environment"]:
            for step in job["steps"]:
                env = {
                    name: value.replace("${{ matrix.environment }}", environment)
                    for name, value in step.get("env", {}).items()
                }
                for line in tf_release_lines(step.get("run", "")):
                    run_line(tf_cli, line, env)
                    ran.append(line)
    assert len(ran) == 2
    agrees = run_make(tf_cli, "-k", "drift-check")
    assert agrees.returncode == 0, agrees.stdout + agrees.stderr
    tf_cli.client("ssm").put_parameter(
        Name="/catalogue/image_ids/prod/api", Value="registry.example.com/api:hand", Overwrite=True
    )
    drifted = run_make(tf_cli, "-k", "drift-check")
    assert drifted.returncode != 0
    assert "stage agrees with its record (v1)" in drifted.stdout
    assert "~ api: SSM holds registry.example.com/api:hand, v1 has" in drifted.stdout
    assert "~ terraform terraform_data.release: replace" in drifted.stdout


def test_the_board_picture_is_the_one_make_board_screenshot_draws() -> None:
    [shown] = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", BOARD)
    picture = (ROOT / "docs" / shown).resolve().relative_to(ROOT).as_posix()
    assert (ROOT / picture).read_bytes().startswith(b"\x89PNG")
    assert f"tests.support.browser $(BOARD) {picture}" in (ROOT / "Makefile").read_text()


# JSON output: each example has the keys the command prints, at every level.

NAMED_BY_DATA = {"images", "added", "changed", "removed"}  # keys are image names, not a shape


def shape(value: object, key: str = "") -> object:
    if isinstance(value, dict):
        if key in NAMED_BY_DATA:
            return "names"
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0], key)] if value else []
    return type(value).__name__


def json_examples() -> list[tuple[str, object]]:
    found = re.findall(r"<!-- json: (.*?) -->\n```json\n(.*?)```", OUTPUT, flags=re.DOTALL)
    return [(args, json.loads(text)) for args, text in found]


def test_each_json_example_has_the_shape_the_command_prints(tf_cli: Cli) -> None:
    stack = tf_cli.copy_fixture("failing_stack")  # applies unless told to fail; reads api
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
    )
    ecr = tf_cli.client("ecr")
    tf_cli.ok("publish", "worker", push_image(ecr, "worker", "1.0.0"))
    tf_cli.ok("publish", "api", push_image(ecr, "api", "1.0.0"))
    tf_cli.ok("apply", "--env", "stage", "--reason", "first release", "--yes")
    tf_cli.ok("publish", "api", push_image(ecr, "api", "1.1.0"))
    tf_cli.ok("prepare", "--env", "stage", "--reason", "api 1.1")  # the deploy example's v2
    examples = json_examples()
    assert [args.split()[0] for args, _ in examples] == ["status", "deploy", "history"]
    printed = {args: json.loads(tf_cli.ok(*shlex.split(args))) for args, _ in examples[1:2]}
    printed |= {args: json.loads(tf_cli.ok(*shlex.split(args))) for args, _ in examples[::2]}
    for args, example in examples:
        assert shape(example) == shape(printed[args]), args


# Troubleshooting: each message, in the order of docs/troubleshooting.md, and how to meet it.


def troubles() -> list[re.Pattern[str]]:
    """The error messages of docs/troubleshooting.md (other pages show some too)."""
    found = re.findall(r"```text\n(.*?)```", TROUBLESHOOTING, flags=re.DOTALL)
    shown = [text.strip() for text in found if text.startswith("tf-release: error:")]
    return [re.compile(".+".join(map(re.escape, text.split("…")))) for text in shown]


def last_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    return result.stderr.strip().splitlines()[-1]


def no_config(cli: Cli) -> str:
    del cli.env["TF_RELEASE_CONFIG"]
    (cli.cwd / "tf-release.toml").unlink()
    return last_error(cli.run("status"))


def no_credentials(cli: Cli) -> str:
    del cli.env["AWS_ACCESS_KEY_ID"], cli.env["AWS_SECRET_ACCESS_KEY"]
    return last_error(cli.run("status"))


def access_denied(cli: Cli) -> str:
    only_sts = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:GetCallerIdentity"], "Resource": "*"}],
    }
    cli.env.update(user_with(cli, only_sts))
    enforce_iam(cli, 0)
    try:
        return last_error(cli.run("publish", "api", "registry.example.com/api:1"))
    finally:
        enforce_iam(cli, float("inf"))


def missing_state(cli: Cli) -> str:
    released(cli.stores())
    cli.client("s3").delete_object(Bucket=BUCKET, Key="catalogue/environments/stage/state.json")
    return last_error(cli.run("deploy", "--env", "stage", "--yes"))


def locked(cli: Cli) -> str:
    cli.write_config('[environments.prod]\npromote_from = "latest"\n')
    died_holding_the_lock(cli.stores(), "prod")
    result = cli.run("deploy", "--env", "prod", "--yes")
    assert result.returncode == 3
    return last_error(result)


def unlock_refused(cli: Cli) -> str:
    holding_the_lock(cli.stores())  # by this test's own process, alive on this host
    result = cli.run("unlock", "--env", "stage", "--yes")
    assert result.returncode == 3
    return last_error(result)


def lock_cleared_under(cli: Cli) -> str:
    slow_project(cli, seconds=6)
    run = deploy_in_apply(cli)
    cli.ok("unlock", "--env", "stage", "--yes", "--force")
    _, err = run.communicate(timeout=120)
    assert run.returncode == 1
    return err.strip().splitlines()[-1]


def images_missing(cli: Cli) -> str:
    url = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:never-pushed"
    cli.ok("publish", "api", url, "--skip-image-check")
    return last_error(cli.run("apply", "--env", "stage", "--reason", "r", "--yes"))


def terraform_failed(cli: Cli) -> str:
    stack = cli.copy_fixture("failing_stack")
    cli.write_config(f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n')
    (stack / "FAIL").write_text("")
    cli.ok("publish", "api", "registry.example.com/api:1")
    return last_error(cli.run("apply", "--env", "stage", "--reason", "r", "--yes"))


def backend_changed(cli: Cli) -> str:
    stack = cli.copy_fixture("slow_stack")
    config = f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
    cli.write_config(config + 'backend_config = { path = "stage.tfstate" }\n')
    cli.ok("publish", "api", "registry.example.com/api:1")
    cli.ok("apply", "--env", "stage", "--reason", "r", "--yes")
    cli.write_config(config + 'backend_config = { path = "stagee.tfstate" }\n')
    return last_error(cli.run("deploy", "--env", "stage", "--yes"))


def broken_state(cli: Cli) -> str:
    released(cli.stores())
    key = "catalogue/environments/stage/state.json"
    cli.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"\x00 not a state")
    return last_error(cli.run("status"))


def parameter_limit(cli: Cli) -> str:
    proxy = FaultProxy(cli.server.url)  # moto has no limit: answer as SSM does at 10,000
    try:
        limit = "ParameterLimitExceeded"
        proxy.add(Rule(lambda r: r.operation == "ssm.PutParameter", "fail", code=limit, status=400))
        cli.env["AWS_ENDPOINT_URL"] = proxy.url
        return last_error(cli.run("publish", "api", "registry.example.com/api:1"))
    finally:
        proxy.stop()


def internal_error(cli: Cli) -> str:
    stack = cli.copy_fixture("failing_stack")
    cli.write_config(f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n')
    next_prepared(cli.stores())
    cli.env.update(TF_RELEASE_TERRAFORM=str(garbled_show(cli.cwd)), TMPDIR=str(cli.cwd))
    return last_error(cli.run("deploy", "--env", "stage", "--yes"))


SITUATIONS = [
    no_config,
    no_credentials,
    access_denied,
    locked,
    unlock_refused,
    lock_cleared_under,
    images_missing,
    terraform_failed,
    backend_changed,
    broken_state,
    missing_state,
    parameter_limit,
    internal_error,
]
WITH_TERRAFORM = {lock_cleared_under, terraform_failed, backend_changed, internal_error}
MOTO_ONLY = {access_denied: "IAM enforcement is moto's /moto-api/reset-auth"}


def test_the_troubleshooting_section_covers_each_situation_once() -> None:
    assert len(troubles()) == len(SITUATIONS)


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(i, id=s.__name__, marks=[pytest.mark.moto_only(MOTO_ONLY[s])])
        if s in MOTO_ONLY
        else pytest.param(i, id=s.__name__)
        for i, s in enumerate(SITUATIONS)
    ],
)
def test_each_troubleshooting_message_is_what_the_tool_prints(
    index: int, request: pytest.FixtureRequest
) -> None:
    situation = SITUATIONS[index]
    cli = request.getfixturevalue("tf_cli" if situation in WITH_TERRAFORM else "cli")
    line = situation(cli)
    assert troubles()[index].fullmatch(line), line


# Release policy: the session shown runs as shown.


def test_the_release_policy_session_prints_what_the_manual_shows(cli: Cli) -> None:
    """stage runs api 1.2 since Tuesday 10:00 UTC; prod has the rules of docs/release-policy.md."""
    prod = block(POLICY, "toml", 'soak = "2h"                ')
    cli.write_config(f'[environments.stage]\npromote_from = "latest"\n\n{prod}')
    cli.env["TF_RELEASE_NOW"] = "2026-03-24T10:00Z"
    cli.env["TF_RELEASE_NOW_WRITES"] = "1"
    cli.ok("publish", "api", "registry.example.com/api:1.2")
    cli.ok("apply", "--env", "stage", "--reason", "api 1.2", "--yes")
    [session] = re.findall(r"```text\n(\$ .*?)```", POLICY, flags=re.DOTALL)
    for command in re.split(r"^\$ ", session, flags=re.MULTILINE)[1:]:
        line, *shown = command.rstrip("\n").split("\n")
        args = shlex.split(line)
        if args[0] == "export":
            cli.env.update(assignment.split("=", 1) for assignment in args[1:])
            continue
        done = cli.run(*args[1:])
        printed = (done.stdout + done.stderr).strip()
        expected = ".+".join(map(re.escape, "\n".join(shown).split("…")))
        assert re.fullmatch(expected, printed, flags=re.DOTALL), printed


def test_the_python_example_runs(cli: Cli) -> None:
    """The example of docs/python-api.md, as a script run in the project's folder."""
    [code] = re.findall(r"```python\n(.*?)```", PYTHON, flags=re.DOTALL)
    config = Path(cli.env["TF_RELEASE_CONFIG"])  # the example's registry is not reachable here
    config.write_text(config.read_text() + '\n[registries."ghcr.io"]\ncheck = false\n')
    done = subprocess.run(
        [str(BIN / "python"), "-c", code], env=cli.env, cwd=cli.cwd, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["succeeded", "stage v1", "prod None"]
