"""Guarantee 9: Terraform runs from argument lists, never a shell, so a value from the config
reaches it as text and nothing else."""

from tests.conftest import Cli
from tests.support.assertions import assert_refused
from tests.support.project import image


def test_shell_syntax_in_a_config_value_is_passed_as_plain_text(tf_cli: Cli) -> None:
    stack = tf_cli.copy_fixture("slow_stack")
    (stack / "terraform.tfvars").write_text("seconds = 0\n")
    tf_cli.write_config(
        f'[environments.stage]\npromote_from = "latest"\nterraform_dir = "{stack}"\n'
        'backend_config = { path = "state/$(touch PWNED);`touch PWNED2`.tfstate" }\n'
    )
    tf_cli.ok("publish", "api", image("api", "one"))
    tf_cli.ok("apply", "-e", "stage", "-r", "one", "--yes")
    assert not list(tf_cli.cwd.rglob("PWNED*"))
    assert (stack / "state/$(touch PWNED);`touch PWNED2`.tfstate").is_file()


def test_shell_syntax_in_a_workspace_name_is_refused(cli: Cli) -> None:
    cli.write_config(
        '[environments.stage]\npromote_from = "latest"\nworkspace = "x; touch PWNED"\n'
    )
    assert_refused(cli, ["status"], "environments.stage.workspace")
