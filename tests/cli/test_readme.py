"""What the README shows is what the tool does."""

import json
import re

from tests.conftest import Cli
from tests.support.project import ROOT

README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_the_configuration_example_loads(cli: Cli) -> None:
    config = cli.cwd / "tf-release.toml"
    config.write_text(blocks("toml")[0])
    cli.env["TF_RELEASE_CONFIG"] = str(config)
    assert cli.ok("iam-policy")


def test_the_iam_policy_shown_is_the_one_printed_for_the_example(cli: Cli) -> None:
    config = cli.cwd / "tf-release.toml"
    config.write_text(blocks("toml")[0])
    cli.env["TF_RELEASE_CONFIG"] = str(config)
    [shown] = [block for block in blocks("json") if '"Statement"' in block]
    assert json.loads(cli.ok("iam-policy")) == json.loads(shown)
