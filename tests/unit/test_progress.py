"""Progress: which steps a deploy announces, and how the terminal spinner shows them."""

import io
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from rich.console import Console

from tests.support.project import image
from tf_release.faces.progress import Spinner, for_terminal
from tf_release.flows import release
from tf_release.flows.deploy import DeployOptions
from tf_release.model.errors import TerraformFailed
from tf_release.model.progress import Quiet
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

    def seen(self) -> str:
        """What a person would read: the text without colours and cursor movements."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.getvalue())


def spinner_on(terminal: Terminal) -> Spinner:
    return Spinner(Console(file=terminal, force_terminal=True, width=100))


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
    spinner = spinner_on(terminal)
    with spinner.step("terraform plan (stage)"):
        assert "⠋ terraform plan (stage) (0s)" in terminal.seen()
    drawn = terminal.getvalue()
    assert drawn.endswith("\x1b[2K") or drawn.endswith("\x1b[?25h")  # line erased, cursor back


def test_the_spinner_keeps_turning_and_counting_while_a_step_runs() -> None:
    terminal = Terminal()
    with spinner_on(terminal).step("terraform apply (stage)"):
        time.sleep(1.3)
    seen = terminal.seen()
    assert "⠙ terraform apply (stage)" in seen
    assert "terraform apply (stage) (1s)" in seen


def test_output_written_around_the_spinner_appears_above_it_line_by_line() -> None:
    terminal = Terminal()
    spinner = spinner_on(terminal)
    shown = spinner.around(terminal)
    with spinner.step("terraform apply (stage)"):
        shown.write("aws_ecs_task_definition.api: Creating...\n")
        seen = terminal.seen()
        assert "aws_ecs_task_definition.api: Creating...\n" in seen
        assert seen.rstrip().endswith("terraform apply (stage) (0s)")  # drawn again below


def test_a_half_written_line_is_shown_once_it_is_whole() -> None:
    terminal = Terminal()
    spinner = spinner_on(terminal)
    shown = spinner.around(terminal)
    with spinner.step("terraform apply (stage)"):
        shown.write("Apply complete! Res")
        assert "Res" not in terminal.seen()
        shown.write("ources: 1 added.\n")
        assert "Apply complete! Resources: 1 added.\n" in terminal.seen()


def test_a_half_line_left_when_the_steps_end_is_still_shown() -> None:
    terminal = Terminal()
    spinner = spinner_on(terminal)
    shown = spinner.around(terminal)
    with spinner.step("terraform apply (stage)"):
        shown.write("killed mid-li")
    assert "killed mid-li" in terminal.seen()


def test_terraform_colours_pass_through_and_markup_is_not_read() -> None:
    terminal = Terminal()
    spinner = spinner_on(terminal)
    with spinner.step("terraform plan (stage)"):
        spinner.around(terminal).write("\x1b[32m+\x1b[0m create [bold]x[/bold]\n")
    assert "\x1b[32m+" in terminal.getvalue()
    assert "+ create [bold]x[/bold]" in terminal.seen()


def test_an_inner_step_shows_and_then_gives_the_line_back_to_the_outer_one() -> None:
    terminal = Terminal()
    spinner = spinner_on(terminal)
    with spinner.step("deploying stage"):
        with spinner.step("terraform plan (stage)"):
            assert terminal.seen().rstrip().endswith("terraform plan (stage) (0s)")
        spinner._live.refresh()  # type: ignore[union-attr]
        assert terminal.seen().rstrip().endswith("deploying stage (0s)")


def test_a_pipe_or_a_dumb_terminal_gets_no_spinner(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(for_terminal(io.StringIO()), Quiet)
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(for_terminal(Terminal()), Quiet)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert isinstance(for_terminal(Terminal()), Spinner)


def test_a_pipe_gets_terraform_output_as_it_comes() -> None:
    pipe = io.StringIO()
    spinner = spinner_on(Terminal())
    assert spinner.around(pipe) is pipe


def test_no_color_takes_the_colour_away_but_not_the_spinner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    terminal = Terminal()
    spinner = Spinner(Console(file=terminal, force_terminal=True, width=100))
    with spinner.step("terraform plan (stage)"):
        pass
    assert "⠋ terraform plan (stage) (0s)" in terminal.getvalue()  # no colour code between
