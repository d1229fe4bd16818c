"""Issue #11 §2: no traceback, ever. Whatever escapes a command by mistake ends as one line that
names a file holding the traceback (exit 1), and a deploy that meets such a bug at any step still
puts SSM back, records the attempt as failed and releases its lock."""

import io
import re
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.support.project import REGION, image
from tests.support.scenes import next_prepared
from tests.support.terraform import garbled_show
from tf_release.faces import external
from tf_release.faces.cli import main
from tf_release.flows import deploy, views
from tf_release.flows.deploy import DeployOptions, DeployPlan
from tf_release.stores.bundle import Stores
from tf_release.terraform.runner import PlanSummary

STEPS = ["read", "confirm", "write", "plan", "apply"]
LINE = re.compile(
    r"(?P<program>tf-release(-manifest)?): (error: )?internal error: (?P<error>\w+: .+) "
    r"\(details in (?P<file>\S+); please report it\)"
)


class BreaksAt:
    """A Terraform run with a bug in its plan or apply."""

    def __init__(self, step: str) -> None:
        self.step = step

    def plan(self) -> PlanSummary:
        if self.step == "plan":
            raise RuntimeError("plan broke")
        return PlanSummary(change=1)

    def apply(self) -> None:
        if self.step == "apply":
            raise RuntimeError("apply broke")


def breaks_once(monkeypatch: pytest.MonkeyPatch, target: object, name: str, step: str) -> None:
    """`target.name` raises the first time it is called, then works (so the put-back can)."""
    real: Callable[..., Any] = getattr(target, name)
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        if not calls:
            calls.append(1)
            raise RuntimeError(f"{step} broke")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, broken)


@pytest.mark.parametrize("step", STEPS)
def test_a_bug_at_any_step_of_a_deploy_still_puts_ssm_back_records_and_unlocks(
    stores: Stores, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    next_prepared(stores)  # stage runs v1 (api "one"); v2 (api "two") is next
    if step == "read":
        breaks_once(monkeypatch, stores.images, "read_named", step)
    if step == "write":  # after api "two" is written
        breaks_once(monkeypatch, stores.images, "write_pointer", step)

    def confirm(plan: DeployPlan) -> bool:
        if step == "confirm":
            raise RuntimeError("confirm broke")
        return True

    options = DeployOptions(terraform=BreaksAt(step), confirm=confirm)
    with pytest.raises(RuntimeError, match=f"{step} broke"):
        deploy.deploy(stores, "stage", options=options)
    assert stores.images.read("stage") == {"api": image("api", "one")}
    state = stores.states.get("stage")[0]
    assert state.lock is None and state.deployed is not None and state.deployed.version == 1
    [attempt, _] = list(stores.deployments.entries("stage"))
    record = stores.deployments.get(attempt)
    assert record.outcome == "failed" and record.version == 2
    assert record.message == f"internal error: RuntimeError: {step} broke"


def test_a_bug_in_a_command_is_one_line_naming_the_file_with_its_traceback(tf_cli: Cli) -> None:
    stack = tf_cli.copy_fixture("failing_stack")
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
    )
    next_prepared(tf_cli.stores())
    garbled = garbled_show(tf_cli.cwd)
    (tf_cli.cwd / "tmp").mkdir()
    tf_cli.env.update(TF_RELEASE_TERRAFORM=str(garbled), TMPDIR=str(tf_cli.cwd / "tmp"))
    result = tf_cli.run("deploy", "-e", "stage", "--yes")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    found = LINE.fullmatch(result.stderr.strip().splitlines()[-1])
    assert found is not None, result.stderr
    assert found["program"] == "tf-release" and found["error"].startswith("JSONDecodeError: ")
    crash = Path(found["file"])
    assert crash.parent == tf_cli.cwd / "tmp" and crash.name.startswith("tf-release-crash-")
    assert "Traceback (most recent call last)" in crash.read_text()
    stores = tf_cli.stores()
    assert stores.images.read("stage") == {"api": image("api", "one")}
    state = stores.states.get("stage")[0]
    assert state.lock is None and state.deployed is not None and state.deployed.version == 1
    [attempt, _] = list(stores.deployments.entries("stage"))
    record = stores.deployments.get(attempt)
    assert record.outcome == "failed" and record.message.startswith("internal error: JSONDecode")


def test_tf_release_debug_also_prints_the_traceback(
    stores: Stores,
    config_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("status broke")

    monkeypatch.setattr(views, "status", broken)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # pytest keeps its own SIGTERM
    monkeypatch.setattr(tempfile, "tempdir", str(config_path.parent))
    monkeypatch.setenv("TF_RELEASE_DEBUG", "1")
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(config_path), "status"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)") and "status broke" in err
    found = LINE.fullmatch(err.strip().splitlines()[-1])
    assert found is not None and found["error"] == "RuntimeError: status broke"


def test_a_bug_in_the_external_program_is_one_line_on_stderr(
    stores: Stores,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("read broke")

    monkeypatch.setattr(external, "read_release", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO(f'{{"project": "catalogue", "environment": "stage", "region": "{REGION}"}}'),
    )
    with pytest.raises(SystemExit) as exited:
        external.main()
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    found = LINE.fullmatch(err.strip())
    assert found is not None, err
    assert (
        found["program"] == "tf-release-manifest" and found["error"] == "RuntimeError: read broke"
    )
    assert "Traceback (most recent call last)" in Path(found["file"]).read_text()
