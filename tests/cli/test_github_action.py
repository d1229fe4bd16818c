"""The GitHub Action (action.yml), its steps run as GitHub's runner runs a composite action's,
against the session's AWS server: a pipeline that says `uses: OWNER/tf-release@v1` gets the
same summary, exit code and error as one that runs tf-release itself, and nothing it types or
tf-release prints is run or obeyed by the runner.

The runner is played here, in part: `${{ … }}` in the action is evaluated (only what the action
uses: inputs, github.action_path, steps.*.outputs; anything else is an error), each `run:` step
runs in bash with GITHUB_ACTION_PATH, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY, and its log is read
for workflow commands. Composite actions get no INPUT_* variables from the runner
(actions/runner#665): a step sees an input only if its `env:` maps it, so none is set here
either. `uses:` steps are skipped: actions/setup-python is stood in for by a fresh virtual
environment first on PATH (`runner_python`), which the install step really installs into.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import BIN, Cli
from tests.support.assertions import snapshot
from tests.support.markdown import parse
from tests.support.project import ROOT, image
from tests.support.scenes import released
from tf_release.flows import release

ACTION = ROOT / "action.yml"
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}")
NAME = r"[A-Za-z_][\w-]*"
SETUP_PYTHON = "actions/setup-python@v5"


@dataclass
class ActionRun:
    """What a pipeline sees of the action: its exit code, its log (stdout and stderr merged, as
    the job's page shows them), its outputs and the job summary its steps wrote."""

    returncode: int
    log: str
    outputs: dict[str, str]
    summary: str
    skipped: list[str]  # the `uses:` steps, not run here

    def annotations(self) -> list[str]:
        """The messages of the `::error::` lines the runner would make annotations of.

        The runner takes a line for a workflow command when it starts with `::` after leading
        spaces, unless `::stop-commands::TOKEN` turned commands off until `::TOKEN::`."""
        errors: list[str] = []
        stopped_by: str | None = None
        for line in self.log.splitlines():
            line = line.strip()
            if stopped_by is not None:
                stopped_by = None if line == f"::{stopped_by}::" else stopped_by
            elif line.startswith("::stop-commands::"):
                stopped_by = line.removeprefix("::stop-commands::")
            elif command := re.match(r"::error(?: [^:]*)?::(.*)", line):
                data = command[1].replace("%0D", "\r").replace("%0A", "\n")
                errors.append(data.replace("%25", "%"))
        return errors


def load_action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text())


def evaluator(
    inputs: dict[str, str], action_path: Path, outputs: dict[str, dict[str, str]]
) -> Callable[[str], str]:
    """`${{ … }}` replaced as the runner replaces it, for the expressions the action uses."""

    def value(match: re.Match[str]) -> str:
        expression = match[1].strip()
        if found := re.fullmatch(rf"inputs\.({NAME})", expression):
            return inputs[found[1]]
        if expression == "github.action_path":
            return str(action_path)
        if found := re.fullmatch(rf"steps\.({NAME})\.outputs\.({NAME})", expression):
            return outputs.get(found[1], {}).get(found[2], "")
        raise ValueError(f"${{{{ {expression} }}}}: not an expression this test evaluates")

    return lambda text: EXPRESSION.sub(value, text)


def read_outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT's `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines() if path.exists() else [])
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            for text in lines:
                if text == delimiter:
                    break
                block.append(text)
            outputs[name] = "\n".join(block)
        else:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


def run_action(env: dict[str, str], workspace: Path, action_path: Path, **given: str) -> ActionRun:
    """The action's steps in order, as the runner runs them for `uses:` with `with: given`
    (keyword names with `_` for `-`); the first step that fails ends the action."""
    action = load_action()
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    given = {name.replace("_", "-"): value for name, value in given.items()}
    assert set(given) <= set(inputs), f"inputs the action does not declare: {given}"
    inputs.update(given)
    runner = workspace / ".runner"
    runner.mkdir(exist_ok=True)
    step_outputs: dict[str, dict[str, str]] = {}
    evaluate = evaluator(inputs, action_path, step_outputs)
    log: list[str] = []
    summaries: list[str] = []
    skipped: list[str] = []
    returncode = 0
    for number, step in enumerate(action["runs"]["steps"]):
        if "uses" in step:
            skipped.append(step["uses"])
            continue
        assert step["shell"] == "bash", step
        script = runner / f"step-{number}.sh"
        script.write_text(evaluate(step["run"]))
        summary, output = runner / f"summary-{number}.md", runner / f"output-{number}"
        step_env = {
            **env,
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(action_path),
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_OUTPUT": str(output),
            "RUNNER_TEMP": str(runner),
            **{name: evaluate(str(text)) for name, text in step.get("env", {}).items()},
        }
        folder = evaluate(step.get("working-directory", "."))
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],  # GitHub's bash
            env=step_env,
            cwd=workspace / folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
        )
        log.append(result.stdout)
        if summary.exists() and summary.read_text():
            summaries.append(summary.read_text())
        step_outputs[step.get("id", f"step-{number}")] = read_outputs(output)
        returncode = result.returncode
        if returncode != 0:
            break
    outputs = {name: evaluate(spec["value"]) for name, spec in action["outputs"].items()}
    return ActionRun(returncode, "".join(log), outputs, "\n".join(summaries), skipped)


def satisfied(requirement: str) -> bool:
    wanted = Requirement(requirement)
    try:
        return wanted.specifier.contains(version(wanted.name), prereleases=True)
    except PackageNotFoundError:
        return False


@pytest.fixture(scope="module")
def action_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The action as the runner fetches it for `uses: …@REF`: the repository's files (tracked,
    or new and not ignored), copied, since pip builds in the folder it installs from and must not
    write into the work tree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    target = tmp_path_factory.mktemp("action")
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():  # not a file deleted but not yet committed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture
def runner_python(tmp_path: Path) -> Path:
    """The bin folder of what actions/setup-python would leave first on PATH: a fresh virtual
    environment with no tf-release, so that the install step's `pip install` is what puts it
    there. Nothing is downloaded: the environment sees this one's packages (pip and
    tf-release's dependencies, and the build backend pyproject.toml names) through a .pth line."""
    venv = tmp_path / "setup-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = subprocess.run([python, "-c", purelib], capture_output=True, text=True, check=True)
    (Path(site.stdout.strip()) / "project-packages.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    missing = [requirement for requirement in build if not satisfied(requirement)]
    assert not missing, f"the build backend {missing} is not installed: run make install"
    return venv / "bin"


@pytest.fixture
def job(cli: Cli, runner_python: Path) -> dict[str, str]:
    """The job's environment: the AWS server's, and PATH with the runner's Python first and
    this environment's console scripts nowhere, so that only the install step can bring
    `tf-release`. The config is found in the workspace (or named by the `config` input), and
    pip may not download (PIP_NO_BUILD_ISOLATION=0 is pip's spelling of --no-build-isolation)."""
    env = {k: v for k, v in cli.env.items() if k not in ("TF_RELEASE_CONFIG", "VIRTUAL_ENV")}
    folders = [f for f in env["PATH"].split(os.pathsep) if f and Path(f).resolve() != BIN.resolve()]
    env["PATH"] = os.pathsep.join([str(runner_python), *folders])
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def published(cli: Cli) -> None:
    """api and worker at "one" in latest: set in-process, as faster than the console script."""
    stores = cli.stores()
    for name in ("api", "worker"):
        release.publish(stores, name, image(name, "one"))


def test_the_action_is_composite_and_its_scripts_take_inputs_only_as_variables() -> None:
    """An input pasted into a script by `${{ }}` would be run as shell (script injection):
    scripts read inputs from `env:`. Every input and output says what it is for."""
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert action["inputs"]["command"]["required"] is True
    for spec in [*action["inputs"].values(), *action["outputs"].values()]:
        assert spec["description"].strip()
    steps = action["runs"]["steps"]
    assert [step["uses"] for step in steps if "uses" in step] == [SETUP_PYTHON]
    scripts = [step["run"] for step in steps if "run" in step]
    assert scripts and all("${{" not in script for script in scripts)
    assert any(
        'pip install --disable-pip-version-check "$GITHUB_ACTION_PATH"' in s for s in scripts
    )
    # every expression in the file is one the runner below evaluates: none is left unchecked
    evaluate = evaluator({name: "x" for name in action["inputs"]}, ROOT, {})
    for text in EXPRESSION.finditer(ACTION.read_text()):
        evaluate(text[0])


def test_a_release_leaves_its_summary_on_the_job_page_and_exits_0(
    cli: Cli, job: dict[str, str], action_path: Path, runner_python: Path
) -> None:
    """A quoted reason stays one argument, and the summary tf-release writes is the page's."""
    published(cli)
    command = 'apply --env stage --reason "first release" --yes'
    run = run_action(job, cli.cwd, action_path, command=command)
    assert run.returncode == 0, run.log
    assert run.skipped == [SETUP_PYTHON]
    assert (runner_python / "tf-release").exists()  # installed by the install step
    assert "Deployed v1 to stage." in run.log
    assert run.outputs == {"exit-code": "0"}
    assert run.annotations() == []
    page = parse(run.summary)
    assert page.headings == ["tf-release apply: stage v1 succeeded"]
    assert page.fact("reason") == "first release"


def test_a_failing_command_keeps_its_exit_code_and_its_error_is_one_annotation(
    cli: Cli, job: dict[str, str], action_path: Path
) -> None:
    """Bad input exits 2, as tf-release does; its error line, `%` and all, is the annotation."""
    args = ["apply", "--env", "st%ge", "--reason", "r", "--yes"]
    direct = cli.run(*args)
    assert direct.returncode == 2
    [error] = direct.stderr.splitlines()
    run = run_action(job, cli.cwd, action_path, command=" ".join(args))
    assert run.returncode == 2, run.log
    assert run.outputs == {"exit-code": "2"}
    assert run.annotations() == [error.removeprefix("tf-release: error: ")]
    assert "%25" in run.log  # escaped as a workflow command's data must be
    assert error in run.log.splitlines()  # tf-release's own line stays in the log
    assert run.summary == ""  # bad input is refused before anything, summary included


def test_the_command_is_split_into_words_and_never_run_by_a_shell(
    cli: Cli, job: dict[str, str], action_path: Path
) -> None:
    """`$(…)`, backquotes, `;`, `>` and `$VARIABLES` in the command are text tf-release gets."""
    published(cli)
    reason = "fix $(touch ran) `touch ran`; touch ran > ran $HOME"
    command = f"apply --env stage --yes --reason '{reason}'"
    run = run_action(job, cli.cwd, action_path, command=command)
    assert run.returncode == 0, run.log
    assert parse(run.summary).fact("reason") == reason
    assert not (cli.cwd / "ran").exists()


def test_a_command_with_an_unclosed_quote_is_bad_input_and_runs_nothing(
    cli: Cli, job: dict[str, str], action_path: Path
) -> None:
    published(cli)
    before = snapshot(cli)
    run = run_action(job, cli.cwd, action_path, command='apply --env stage --reason "oops --yes')
    assert run.returncode == 2, run.log
    assert run.outputs == {"exit-code": "2"}
    assert run.annotations() == [
        "the command input cannot be split into words: No closing quotation"
    ]
    assert run.summary == ""
    assert snapshot(cli) == before


def test_reason_config_and_working_directory_reach_tf_release_as_given(
    cli: Cli, job: dict[str, str], action_path: Path
) -> None:
    """The reason is one argument, quotes and all; the config is found only through the
    config input, from the working directory."""
    folder = cli.cwd / "deploy"
    folder.mkdir()
    (cli.cwd / "tf-release.toml").rename(folder / "release.toml")
    cli.env["TF_RELEASE_CONFIG"] = str(folder / "release.toml")
    published(cli)
    reason = 'Merge "fix" it\'s $(touch ran)\nsecond line'
    run = run_action(
        job,
        cli.cwd,
        action_path,
        command="apply --env stage --yes",
        reason=reason,
        working_directory="deploy",
        config="release.toml",
    )
    assert run.returncode == 0, run.log
    page = parse(run.summary)
    assert page.headings == ["tf-release apply: stage v1 succeeded"]
    manifest = cli.stores().manifests.get("stage", 1)
    assert manifest is not None and manifest.reason == reason
    assert not (folder / "ran").exists()


def test_text_tf_release_prints_cannot_pass_for_a_workflow_command(
    cli: Cli, job: dict[str, str], action_path: Path
) -> None:
    """A stored reason is anyone's text; `show` prints its lines, indented, and the runner
    would obey an indented `::error::` (or `::add-mask::`, …) but for stop-commands."""
    released(cli.stores(), reason="fine\n::error::forged")
    run = run_action(job, cli.cwd, action_path, command="show --env stage v1")
    assert run.returncode == 0, run.log
    assert "::error::forged" in run.log
    assert run.annotations() == []
