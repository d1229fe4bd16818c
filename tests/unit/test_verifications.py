"""Verification commands: argument lists run in order after apply, the first failure fails the
deploy (gates.run_verifications)."""

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tf_release.flows.gates import run_verifications
from tf_release.model.errors import GateFailed
from tf_release.model.progress import Quiet

VARIABLES = {
    "TF_RELEASE_PROJECT": "catalogue",
    "TF_RELEASE_ENV": "stage",
    "TF_RELEASE_VERSION": "v7",
    "TF_RELEASE_DEPLOYMENT_ID": "20261126T120000Z-abc123",
    "TF_RELEASE_IMAGES": json.dumps({"api": "registry.example.com/catalogue/api:one"}),
}
RECORD = """
import json, os, sys, pathlib
names = [n for n in os.environ if n.startswith("TF_RELEASE_")]
line = {"args": sys.argv[1:], "cwd": os.getcwd(), "env": {n: os.environ[n] for n in names}}
with open("calls.jsonl", "a") as calls:
    calls.write(json.dumps(line) + "\\n")
"""


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def calls(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "calls.jsonl").read_text().splitlines()]


def test_commands_run_in_order_from_the_folder_with_the_release_in_their_environment(
    tmp_path: Path,
) -> None:
    commands = [python(RECORD, "first", "--env", "{env}"), python(RECORD, "second", "{version}")]
    checks = run_verifications(commands, tmp_path, VARIABLES, 10, Quiet())
    assert [check.ok for check in checks] == [True, True]
    first, second = calls(tmp_path)
    assert first["args"] == ["first", "--env", "stage"] and second["args"] == ["second", "v7"]
    assert first["cwd"] == str(tmp_path)
    assert {name: first["env"][name] for name in VARIABLES} == VARIABLES


def test_arguments_never_reach_a_shell(tmp_path: Path) -> None:
    run_verifications([python(RECORD, "$(touch pwned)", "a;b")], tmp_path, VARIABLES, 10, Quiet())
    assert calls(tmp_path)[0]["args"] == ["$(touch pwned)", "a;b"]
    assert not (tmp_path / "pwned").exists()


def test_the_first_failing_command_fails_the_gate_with_its_last_lines(tmp_path: Path) -> None:
    failing = python("import sys\nfor n in range(9): print(f'line {n}')\nsys.exit(3)")
    with pytest.raises(GateFailed) as failed:
        run_verifications(
            [python(RECORD, "one"), failing, python(RECORD, "never")],
            tmp_path,
            VARIABLES,
            10,
            Quiet(),
        )
    error = failed.value
    assert error.phase == "verify"
    assert str(error).endswith("failed (exit 3): line 8")
    assert [check.ok for check in error.checks] == [True, False]
    assert error.checks[1].detail.splitlines() == ["exit 3", *(f"line {n}" for n in range(4, 9))]
    assert [call["args"] for call in calls(tmp_path)] == [["one"]]


def test_a_command_that_runs_too_long_is_stopped_and_fails(tmp_path: Path) -> None:
    with pytest.raises(GateFailed, match=r"timed out after 0.5 s"):
        run_verifications(
            [python("import time; print('waiting', flush=True); time.sleep(30)")],
            tmp_path,
            VARIABLES,
            0.5,
            Quiet(),
        )


def test_a_command_that_cannot_run_fails_naming_it(tmp_path: Path) -> None:
    with pytest.raises(GateFailed, match=r"`./no-such-check` failed \(exit 127\): cannot run it"):
        run_verifications([["./no-such-check"]], tmp_path, VARIABLES, 10, Quiet())


def test_output_streams_live(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tf_release.terraform.processes import Output

    run_verifications(
        [python("print('smoke ok')")],
        tmp_path,
        VARIABLES,
        10,
        Quiet(),
        live=Output(sys.stdout, sys.stderr),
    )
    assert "smoke ok" in capsys.readouterr().out


def stopped(pid: int) -> bool:
    """Gone, or a zombie waiting for whoever inherited it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def assert_left_nothing(folder: Path) -> None:
    """The `sleep` a script started (its pid in child.pid) is stopped (killed here if not)."""
    child = int((folder / "child.pid").read_text())
    try:
        for _ in range(50):  # SIGKILL is sent before the gate returns; the kernel may lag
            if stopped(child):
                break
            time.sleep(0.1)
        assert stopped(child)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


@pytest.mark.timeout(60)  # a hang guard: before the fix, the gate waited for the `sleep`
def test_a_command_stopped_for_taking_too_long_leaves_nothing_it_started_running(
    tmp_path: Path,
) -> None:
    """A check script's own children are stopped with it: a `sleep` left behind would hold the
    output pipe, and tf-release its lock, until it ended."""
    script = "sleep 100 & echo $! > child.pid; wait"
    with pytest.raises(GateFailed, match=r"timed out after 0.5 s"):
        run_verifications([["sh", "-c", script]], tmp_path, VARIABLES, 0.5, Quiet())
    assert_left_nothing(tmp_path)


@pytest.mark.timeout(60)  # a hang guard, as above
def test_a_command_that_succeeds_leaves_nothing_it_started_running(tmp_path: Path) -> None:
    script = "sleep 100 & echo $! > child.pid"
    [check] = run_verifications([["sh", "-c", script]], tmp_path, VARIABLES, 10, Quiet())
    assert check.ok
    assert_left_nothing(tmp_path)
