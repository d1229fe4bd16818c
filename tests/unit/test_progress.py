"""Progress: which steps a deploy announces, and how the terminal spinner shows them."""

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from tests.support.project import image
from tf_release.faces.progress import CLEAR, Spinner
from tf_release.flows import release
from tf_release.flows.deploy import DeployOptions
from tf_release.model.errors import TerraformFailed
from tf_release.stores.bundle import Stores
from tf_release.terraform.runner import PlanSummary


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        self.events.append(f"start {message}")
        yield
        self.events.append(f"end {message}")


class Terraform:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def plan(self) -> PlanSummary:
        return PlanSummary(change=1)

    def apply(self) -> None:
        if self.fail:
            raise TerraformFailed("terraform apply failed: boom")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def recorded(stores: Stores) -> tuple[Stores, Recorder]:
    recorder = Recorder()
    for name in ("api", "worker"):
        release.publish(stores, name, image(name, "one"))
    return replace(stores, progress=recorder), recorder


def test_a_deploy_announces_each_long_step_in_order(recorded: tuple[Stores, Recorder]) -> None:
    stores, recorder = recorded
    release.apply(stores, "stage", "first", options=DeployOptions(terraform=Terraform()))
    assert [event for event in recorder.events if event.startswith("start")] == [
        "start preparing stage from latest",
        "start checking that 2 new image(s) exist",
        "start reading the parameters of stage",
        "start writing 2 SSM parameter(s) of stage",
        "start terraform plan (stage)",
        "start terraform apply (stage)",
    ]
    assert len(recorder.events) == 12  # every step that starts ends


def test_a_failed_deploy_announces_putting_ssm_back(recorded: tuple[Stores, Recorder]) -> None:
    stores, recorder = recorded
    with pytest.raises(TerraformFailed):
        release.apply(stores, "stage", "first", options=DeployOptions(terraform=Terraform(True)))
    assert recorder.events[-2:] == [
        "start putting the SSM parameters of stage back",
        "end putting the SSM parameters of stage back",
    ]


def test_the_spinner_shows_the_step_at_once_and_clears_it_after() -> None:
    terminal = Terminal()
    spinner = Spinner(terminal, interval=60)
    with spinner.step("terraform plan (stage)"):
        assert terminal.getvalue() == f"{CLEAR}⠋ terraform plan (stage) (0s)"
    assert terminal.getvalue().endswith(CLEAR)


def test_the_spinner_keeps_turning_while_a_step_runs() -> None:
    terminal = Terminal()
    with Spinner(terminal, interval=0.01).step("terraform apply (stage)"):
        time.sleep(0.2)
    assert terminal.getvalue().count("terraform apply (stage)") > 3


def test_output_written_around_the_spinner_appears_above_it_line_by_line() -> None:
    terminal = Terminal()
    spinner = Spinner(terminal, interval=60)
    shown = spinner.around(terminal)
    with spinner.step("terraform apply (stage)"):
        shown.write("aws_ecs_task_definition.api: Creating...\n")
        spinner_line = f"{CLEAR}⠋ terraform apply (stage) (0s)"
        assert terminal.getvalue() == (
            f"{spinner_line}{CLEAR}aws_ecs_task_definition.api: Creating...\n{spinner_line}"
        )


def test_the_spinner_never_draws_over_a_half_written_line() -> None:
    terminal = Terminal()
    spinner = Spinner(terminal, interval=60)
    shown = spinner.around(terminal)
    with spinner.step("terraform apply (stage)"):
        shown.write("Apply complete! Res")
        assert terminal.getvalue().endswith("Apply complete! Res")
        shown.write("ources: 1 added.\n")
        assert "Apply complete! Resources: 1 added.\n" in terminal.getvalue()
        assert terminal.getvalue().endswith("(0s)")


def test_each_step_starts_at_the_first_frame_and_zero_seconds() -> None:
    terminal = Terminal()
    spinner = Spinner(terminal, interval=0.01)
    with spinner.step("terraform plan (stage)"):
        time.sleep(0.1)
    with spinner.step("terraform apply (stage)"):
        assert f"{CLEAR}⠋ terraform apply (stage) (0s)" in terminal.getvalue()
