"""`tf-release --help` (and `--version`, `COMMAND --help`) imports only the CLI's own light
modules: importing config.py alone (rules.py's regexes, zoneinfo, tomllib, the schemas) cost it
15 to 20 ms. Imports are pinned here, not times."""

import subprocess
import sys

import pytest

# What the CLI needs to define its commands: the package, the CLI, naming (LATEST, CONFIG_NAME,
# parse_version) and errors (what main catches).
LIGHT = ["tf_release", "tf_release.cli", "tf_release.errors", "tf_release.naming"]
# Not zoneinfo: for `COMMAND --help` typer itself loads pydantic, which imports it.
HEAVY = ("boto3", "botocore", "jinja2", "jsonschema", "tomllib")

SHOW_IMPORTS = """
import sys
from tf_release.cli import main
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
