"""`tf-release --help` (and `--version`, `COMMAND --help`) imports only the CLI's own light
modules: importing config.py alone (rules.py's regexes, zoneinfo, tomllib, the schemas) cost it
15 to 20 ms. Imports are pinned here, not times."""

import subprocess
import sys
from pathlib import Path

import pytest

# What the CLI needs to define its commands: the packages, the CLI's modules, naming (LATEST,
# CONFIG_NAME, parse_version) and errors (what main catches).
LIGHT = [
    "tf_release",
    "tf_release.faces",
    "tf_release.faces.cli",
    "tf_release.faces.cli.common",
    "tf_release.faces.cli.looking",
    "tf_release.faces.cli.releasing",
    "tf_release.faces.cli.upkeep",
    "tf_release.model",
    "tf_release.model.errors",
    "tf_release.model.naming",
]
# Not zoneinfo: for `COMMAND --help` typer itself loads pydantic, which imports it.
HEAVY = ("boto3", "botocore", "jinja2", "jsonschema", "tomllib")

SHOW_IMPORTS = """
import sys
from pathlib import Path
from tf_release.faces.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("modules:", " ".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["deploy", "--help"], ["init", "--help"]]
)
def test_help_and_version_import_no_heavy_module(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SHOW_IMPORTS, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    modules = done.stdout.rpartition("modules: ")[2].split()
    assert sorted(m for m in modules if m.split(".")[0] == "tf_release") == LIGHT
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []


def test_python_dash_m_runs_the_same_cli() -> None:
    def run(*argv: str) -> str:
        done = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli = str(Path(sys.executable).parent / "tf-release")
    assert run(sys.executable, "-m", "tf_release") == run(cli)
