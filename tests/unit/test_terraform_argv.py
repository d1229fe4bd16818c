"""The exact command lines tf-release runs: every flag chosen by tf-release, none by
python-terraform's defaults, the same on every supported Terraform (1.6 to 1.15)."""

import io
import json
from pathlib import Path

import pytest

from tf_release.model.config import Environment
from tf_release.model.errors import ApplyRefused, BadInput, TerraformFailed
from tf_release.terraform.processes import Output
from tf_release.terraform.runner import JsonEvents, TerraformRunner, colour_wanted

TF = "/opt/terraform"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def runner(tmp_path: Path, terminal: bool = False, **settings: object) -> TerraformRunner:
    folder = tmp_path / "stack"
    folder.mkdir(exist_ok=True)
    env = Environment("stage", "latest", terraform_dir=folder, **settings)  # type: ignore[arg-type]
    out = Terminal() if terminal else io.StringIO()
    return TerraformRunner(env, TF, Output(out, out))


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "CI", "TERM", "TF_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_init_never_reconfigures_or_migrates_and_passes_the_backend_config(
    tmp_path: Path,
) -> None:
    run = runner(tmp_path, backend_config={"key": "catalogue/stage.tfstate", "region": "eu-1"})
    assert run.argv("init") == [
        TF, "init", "-input=false", "-no-color",
        "-backend-config=key=catalogue/stage.tfstate", "-backend-config=region=eu-1",
    ]  # fmt: skip


def test_plan_takes_the_var_files_and_saves_the_plan(tmp_path: Path) -> None:
    files = (tmp_path / "a.tfvars", tmp_path / "b.tfvars")
    run = runner(tmp_path, var_files=files)
    assert run.argv("plan", plan=Path("/p/release.tfplan")) == [
        TF, "plan", "-input=false", "-detailed-exitcode", "-no-color", "-out=/p/release.tfplan",
        f"-var-file={files[0]}", f"-var-file={files[1]}",
    ]  # fmt: skip


def test_the_read_only_plan_of_verify_takes_no_state_lock(tmp_path: Path) -> None:
    assert runner(tmp_path).argv("plan", plan=Path("/d.tfplan"), lock=False) == [
        TF, "plan", "-input=false", "-detailed-exitcode", "-no-color", "-lock=false",
        "-out=/d.tfplan",
    ]  # fmt: skip


def test_apply_of_a_saved_plan_takes_no_variables_even_with_var_files(tmp_path: Path) -> None:
    """Terraform before 1.10 refuses any variable on a saved plan."""
    run = runner(tmp_path, var_files=(tmp_path / "prod.tfvars",))
    assert run.argv("apply", "/p/release.tfplan") == [
        TF, "apply", "-input=false", "-json", "/p/release.tfplan"
    ]  # fmt: skip


def test_show_reads_the_plan_as_json(tmp_path: Path) -> None:
    assert runner(tmp_path).argv("show", "/p/release.tfplan") == [
        TF, "show", "-json", "/p/release.tfplan"
    ]  # fmt: skip


def test_workspace_commands_take_no_other_flag(tmp_path: Path) -> None:
    run = runner(tmp_path)
    assert run.argv("workspace list") == [TF, "workspace", "list", "-no-color"]
    assert run.argv("workspace new", "prod") == [TF, "workspace", "new", "-no-color", "prod"]


def test_on_a_terminal_terraform_keeps_its_colours(tmp_path: Path) -> None:
    assert runner(tmp_path, terminal=True).argv("init") == [TF, "init", "-input=false"]


@pytest.mark.parametrize("variable", ["NO_COLOR", "CI"])
def test_no_color_or_ci_turn_terraforms_colours_off_on_a_terminal(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, "1")
    assert not colour_wanted(Terminal())


def test_piped_output_has_no_colours() -> None:
    assert not colour_wanted(io.StringIO())


def recorded_backend(run: TerraformRunner, config: dict[str, object]) -> None:
    data = run.folder / ".terraform"
    data.mkdir()
    document = {"version": 3, "backend": {"type": "s3", "config": config, "hash": 1}}
    (data / "terraform.tfstate").write_text(json.dumps(document))


def test_a_changed_backend_key_stops_before_anything_runs_naming_the_migration(
    tmp_path: Path,
) -> None:
    run = runner(tmp_path, backend_config={"key": "catalogue/stagee.tfstate"})
    recorded_backend(run, {"bucket": "state", "key": "catalogue/stage.tfstate", "encrypt": None})
    with pytest.raises(BadInput) as raised:
        run.check_backend()
    message = str(raised.value)
    assert '(key "catalogue/stage.tfstate" → "catalogue/stagee.tfstate")' in message
    assert (
        f"terraform -chdir={run.folder} init -migrate-state "
        "-backend-config=key=catalogue/stagee.tfstate" in message
    )
    assert "\n" not in message


def test_the_same_backend_or_a_new_folder_goes_ahead(tmp_path: Path) -> None:
    run = runner(tmp_path, backend_config={"key": "k", "encrypt": "true"})
    run.check_backend()  # never initialised
    recorded_backend(run, {"key": "k", "encrypt": True, "bucket": "from-the-tf-files"})
    run.check_backend()


def events(*documents: dict[str, object]) -> JsonEvents:
    seen = JsonEvents(io.StringIO())
    for document in documents:
        text = json.dumps(document) + "\n"
        seen.write(text[:10])  # the pipe delivers lines in pieces
        seen.write(text[10:])
    return seen


STALE = {
    "type": "diagnostic",
    "@message": "Error: Saved plan is stale",
    "diagnostic": {
        "severity": "error",
        "summary": "Saved plan is stale",
        "detail": "The given\nplan.",
    },
}
CREATING = {"type": "apply_start", "@message": "aws_ecs_task_definition.api: Creating..."}


def test_apply_events_show_terraforms_own_messages_and_its_first_error() -> None:
    seen = events({"type": "version", "@message": "Terraform 1.6.6"}, CREATING, STALE)
    assert seen.shown.getvalue() == (  # type: ignore[attr-defined]
        "aws_ecs_task_definition.api: Creating...\n\nError: Saved plan is stale\n  The given\n"
        "  plan.\n\n"
    )
    assert seen.error() == "Error: Saved plan is stale: The given plan."
    assert seen.started


def test_an_apply_refused_before_any_change_did_not_start() -> None:
    assert not events({"type": "version", "@message": "Terraform 1.9.8"}, STALE).started


def fake_terraform(tmp_path: Path, lines: list[dict[str, object]]) -> str:
    script = tmp_path / "terraform"
    printed = "".join(json.dumps(line) + "\n" for line in lines)
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{printed}EOF\nexit 1\n")
    script.chmod(0o755)
    return str(script)


def test_a_refused_apply_is_told_apart_from_a_failed_one(tmp_path: Path) -> None:
    run = runner(tmp_path)
    run.binary = fake_terraform(tmp_path, [STALE])
    with pytest.raises(ApplyRefused, match=r"\(exit 1\): Error: Saved plan is stale: The given"):
        run.apply()
    run = runner(tmp_path)
    run.binary = fake_terraform(tmp_path, [CREATING, STALE])
    with pytest.raises(TerraformFailed) as raised:
        run.apply()
    assert not isinstance(raised.value, ApplyRefused)
