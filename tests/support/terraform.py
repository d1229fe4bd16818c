"""Terraform for the tests on machines that cannot download providers."""

import json
import os
import re
import shutil
from pathlib import Path

from tests.support import external_provider

PLUGIN_DIR_VARIABLE = "TF_RELEASE_TEST_PLUGIN_DIR"


EXTERNAL = "registry.terraform.io/hashicorp/external"


def write_cli_config(folder: Path, external: bool = True) -> Path:
    """Each provider the machine's mirror (TF_RELEASE_TEST_PLUGIN_DIR) holds comes from there,
    `hashicorp/external` from the stand-in when the mirror has none, the rest from the registry.
    external=False: a machine where `hashicorp/external` cannot be installed at all, as a new
    user's may be (the quickstart must need only the aws provider).

    OpenTofu looks providers up under its own host: each of them is also offered as
    registry.opentofu.org/hashicorp/NAME, from `folder/opentofu-mirror`, whose real folders
    end in a symlink per platform folder (or per archive, in a packed mirror) to the mirror's.
    A symlink at the hostname level would not be followed."""

    def opentofu_name(name: str) -> str:
        return name.replace("registry.terraform.io/", "registry.opentofu.org/", 1)

    mirrors: list[tuple[str, list[str]]] = []
    plugin_dir = os.environ.get(PLUGIN_DIR_VARIABLE)
    if plugin_dir:
        held = sorted(p.name for p in Path(plugin_dir).glob("registry.terraform.io/hashicorp/*"))
        names = [f"registry.terraform.io/hashicorp/{name}" for name in held]
        mirrors.append((plugin_dir, [name for name in names if external or name != EXTERNAL]))
    if external and not any(EXTERNAL in names for _, names in mirrors):
        stand_in = folder / "stand-in-mirror"
        external_provider.install(stand_in, cache_home=folder / "home")
        mirrors.append((str(stand_in), [EXTERNAL]))
    opentofu = folder / "opentofu-mirror"
    for path, names in mirrors:
        for name in names:
            source = Path(path) / name
            # unpacked: VERSION/PLATFORM/…; packed: terraform-provider-NAME_VERSION_PLATFORM.zip
            entries = [
                p for version in source.iterdir() if version.is_dir() for p in version.iterdir()
            ]
            entries += [p for p in source.iterdir() if p.is_file()]
            for entry in entries:
                link = opentofu / opentofu_name(name) / entry.relative_to(source)
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.is_symlink():
                    link.symlink_to(entry.resolve())
    offered = [opentofu_name(name) for _, names in mirrors for name in names]
    if offered:
        mirrors.append((str(opentofu), offered))
    text = "provider_installation {\n"
    for path, names in mirrors:
        text += f"  filesystem_mirror {{\n    path    = {json.dumps(path)}\n"
        text += f"    include = {json.dumps(names)}\n  }}\n"
    excluded = [name for _, names in mirrors for name in names]
    if not external:
        excluded += [EXTERNAL, opentofu_name(EXTERNAL)]
    text += f"  direct {{\n    exclude = {json.dumps(excluded)}\n  }}\n}}\n"
    config = folder / ("cli.tfrc" if external else "cli-without-external.tfrc")
    config.write_text(text)
    return config


def stand_in_serves_external() -> bool:
    """`write_cli_config`'s choice: the stand-in serves `hashicorp/external` unless the machine's
    mirror (TF_RELEASE_TEST_PLUGIN_DIR) holds the real provider."""
    plugin_dir = os.environ.get(PLUGIN_DIR_VARIABLE)
    return not (plugin_dir and (Path(plugin_dir) / EXTERNAL).is_dir())


def unlock_stand_in(folder: Path) -> None:
    """Where the stand-in serves `hashicorp/external`, take its block out of every lock file
    under `folder` (a copy of terraform/): the committed lock files name the real provider's
    packages, and Terraform refuses a package whose hash they do not name. The aws provider's
    block stays, so the mirror's aws package is still checked against it."""
    if not stand_in_serves_external():
        return
    block = re.compile(rf'^provider "{re.escape(EXTERNAL)}" \{{\n.*?^\}}\n\n?', re.M | re.S)
    for lock in folder.rglob(".terraform.lock.hcl"):
        lock.write_text(block.sub("", lock.read_text()).rstrip() + "\n")


def garbled_show(folder: Path) -> Path:
    """A `terraform` (for TF_RELEASE_TERRAFORM) whose `show -json` prints something that is not
    JSON, as a broken Terraform build might; everything else goes to the real binary."""
    real = shutil.which("terraform")
    script = folder / "terraform-with-garbled-show"
    script.write_text(
        '#!/bin/sh\nif [ "$1" = show ]; then echo "this is not JSON"; exit 0; fi\n'
        f'exec {real} "$@"\n'
    )
    script.chmod(0o755)
    return script
