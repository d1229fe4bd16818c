"""A stand-in for the `hashicorp/external` Terraform provider, for machines that cannot download it.

NOT the real provider: a small re-implementation of its one data source (`external`) with the
PyPI package `tf`, following the real one's contract: run `program` with `query` as JSON on stdin
(in `working_dir`), and return the JSON object it prints, all strings, as `result`; a non-zero
exit or a non-string value is an error. Tests that use it say so; where the real provider can be
installed, the same tests run against it (see `terraform_cli_config`).
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tf import provider, schema, types
from tf.iface import Config, ReadDataContext, State
from tf.runner import run_provider
from tf.utils import Diagnostics

VERSION = "2.3.5"


class ExternalDataSource(provider.DataSource):
    def __init__(self, owner: Any) -> None:
        self.owner = owner

    @classmethod
    def get_name(cls) -> str:
        return ""  # with the model prefix "external": data "external"

    @classmethod
    def get_schema(cls) -> schema.Schema:
        return schema.Schema(
            attributes=[
                schema.Attribute("program", types.List(types.String()), required=True),
                schema.Attribute("query", types.Map(types.String()), optional=True),
                schema.Attribute("working_dir", types.String(), optional=True),
                schema.Attribute("result", types.Map(types.String()), computed=True),
                schema.Attribute("id", types.String(), computed=True),
            ]
        )

    def read(self, ctx: ReadDataContext, config: Config) -> State | None:
        program = config["program"]
        query = config.get("query") or {}
        try:
            done = subprocess.run(
                program,
                input=json.dumps(query),
                capture_output=True,
                text=True,
                cwd=config.get("working_dir") or None,
                timeout=300,
            )
        except OSError as error:
            ctx.diagnostics.add_error("External Program Lookup Failed", str(error))
            return None
        if done.returncode != 0:
            ctx.diagnostics.add_error(
                "External Program Execution Failed",
                f"The data source received an unexpected error while attempting to execute the "
                f"program.\n\nProgram: {program[0]}\nError Message: {done.stderr.strip()}\n"
                f"State: exit status {done.returncode}",
            )
            return None
        try:
            result = json.loads(done.stdout)
        except ValueError as error:
            ctx.diagnostics.add_error("Unexpected External Program Results", str(error))
            return None
        if not isinstance(result, dict) or not all(isinstance(v, str) for v in result.values()):
            ctx.diagnostics.add_error(
                "Unexpected External Program Results",
                "The program must print a JSON object whose values are all strings.",
            )
            return None
        return {**config, "query": query, "result": result, "id": "-"}


class ExternalProvider(provider.Provider):
    def full_name(self) -> str:
        return "registry.terraform.io/hashicorp/external"

    def get_model_prefix(self) -> str:
        return "external"

    def get_provider_schema(self, diags: Diagnostics) -> schema.Schema:
        return schema.Schema()

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        pass

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        pass

    def get_data_sources(self) -> list[type[provider.DataSource]]:
        return [ExternalDataSource]

    def get_resources(self) -> list[type[provider.Resource]]:
        return []


def install(mirror: Path, cache_home: Path) -> Path:
    """Lay the stand-in out as an unpacked filesystem mirror; returns the launcher."""
    folder = mirror / f"registry.terraform.io/hashicorp/external/{VERSION}/linux_amd64"
    folder.mkdir(parents=True, exist_ok=True)
    launcher = folder / f"terraform-provider-external_v{VERSION}"
    root = Path(__file__).parents[2]
    launcher.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"os.environ['HOME'] = {str(cache_home)!r}  # tf caches its TLS certificate there\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from tests.support.external_provider import main\n"
        "main()\n"
    )
    launcher.chmod(0o755)
    return launcher


def main() -> None:
    run_provider(ExternalProvider(), sys.argv)
