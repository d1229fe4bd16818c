"""On a terminal, a deploy shows a spinner for each long step, with Terraform's output above it."""

import os
import pty
import re
import time
from dataclasses import replace

from tests.conftest import Cli
from tests.e2e.test_interrupts_and_locks import slow_project


def read_terminal(controller: int, until: float) -> bytes:
    seen = b""
    while time.monotonic() < until:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the program closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen


def test_a_deploy_on_a_terminal_spins_through_its_steps_with_terraform_output_intact(
    tf_cli: Cli,
) -> None:
    slow_project(tf_cli, seconds=3)
    controller, terminal = pty.openpty()
    run = tf_cli.start("deploy", "-e", "stage", "--yes", stdout=terminal, stderr=terminal)
    os.close(terminal)
    drawn = read_terminal(controller, time.monotonic() + 120).decode()
    seen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn)  # what a person reads
    run.wait(timeout=60)
    os.close(controller)
    assert run.returncode == 0, seen
    for step in ("writing 1 SSM parameter(s) of stage", "terraform plan (stage)"):
        assert f"⠋ {step} (0s)" in seen
    assert "terraform apply (stage) (2s)" in seen  # the seconds count up while Terraform works
    lines = seen.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert any(line.endswith("Apply complete! Resources: 1 added, 0 changed, 1 destroyed.")
               for line in lines)  # fmt: skip
    assert "Deployed v2 to stage." in seen


def test_without_a_terminal_there_is_no_spinner(tf_cli: Cli) -> None:
    slow_project(tf_cli, seconds=1)
    result = tf_cli.run("deploy", "-e", "stage", "--yes")
    assert result.returncode == 0, result.stderr
    assert "⠋" not in result.stdout + result.stderr
    assert "\x1b[" not in result.stdout + result.stderr


def test_a_dumb_terminal_gets_no_spinner(tf_cli: Cli) -> None:
    slow_project(tf_cli, seconds=1)
    controller, terminal = pty.openpty()
    dumb = replace(tf_cli, env={**tf_cli.env, "TERM": "dumb"})
    run = dumb.start("deploy", "-e", "stage", "--yes", stdout=terminal, stderr=terminal)
    os.close(terminal)
    seen = read_terminal(controller, time.monotonic() + 120).decode()
    run.wait(timeout=60)
    os.close(controller)
    assert run.returncode == 0, seen
    assert "Deployed v2 to stage." in seen
    assert "⠋" not in seen and "\x1b[" not in seen
