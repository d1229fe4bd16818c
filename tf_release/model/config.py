"""tf-release.toml: which project, bucket and environments a release works on."""

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tf_release.model import naming, schemas
from tf_release.model.errors import BadInput
from tf_release.model.rules import NO_RULES, Rules, load_rules

CONFIG_VARIABLE = "TF_RELEASE_CONFIG"
ECS_TIMEOUT = 900.0  # seconds a deploy waits for its ECS services to finish rolling out
VERIFY_TIMEOUT = 600.0  # seconds each verification command may take


@dataclass(frozen=True)
class Environment:
    name: str
    promote_from: str
    terraform_dir: Path | None = None
    var_files: tuple[Path, ...] = ()
    workspace: str | None = None
    backend_config: dict[str, str] = field(default_factory=dict)
    role_arn: str | None = None  # this environment's SSM parameters live in the role's account
    ecs_services: tuple[str, ...] = ()  # "cluster/service": checked after a deploy
    ecs_timeout: float = ECS_TIMEOUT
    verify: tuple[tuple[str, ...], ...] = ()  # commands run after apply; any failure fails it
    verify_timeout: float = VERIFY_TIMEOUT
    atomic: bool = False  # after a failed apply or gate, converge back to what ran before
    pin_digests: bool = True  # SSM gets ECR images at their digests (`REPO@sha256:…`)
    rules: Rules = NO_RULES  # soak before a promotion, freeze windows (rules.py)


@dataclass(frozen=True)
class RegistrySettings:
    """`[registries."HOST"]`: how an image registry other than ECR is reached."""

    insecure: bool = False  # plain HTTP, for a registry on a private network
    check: bool = True  # False: never asked; its images are kept as written, unpinned


@dataclass(frozen=True)
class Config:
    path: Path
    project: str
    bucket: str
    environments: dict[str, Environment]
    region: str | None = None
    images: tuple[str, ...] | None = None
    terraform_bin: str | None = None
    registries: dict[str, RegistrySettings] = field(default_factory=dict)

    def registry(self, host: str) -> RegistrySettings:
        return self.registries.get(host, RegistrySettings())

    def checks(self, url: str) -> bool:
        """Whether an image's registry is asked about it: ECR always, any other registry unless
        its settings say `check = false`."""
        return naming.parse_ecr(url) is not None or self.registry(naming.registry_host(url)).check

    def environment(self, name: str) -> Environment:
        if name not in self.environments:
            known = ", ".join(self.environments) or "none"
            raise BadInput(f"unknown environment {name!r} (configured: {known})")
        return self.environments[name]

    def check_image(self, name: str) -> str:
        naming.check_image_name(name)
        if self.images is not None and name not in self.images:
            raise BadInput(f"image {name!r} is not in the allow-list `images` of {self.path}")
        return name

    def check_label(self, label: str) -> str:
        """A label to take images from: `latest`, a configured environment (what it runs), or
        another label that `publish --label` writes."""
        if label != naming.LATEST and label not in self.environments:
            naming.check_label_name(label)
        return label

    def check_publish_label(self, label: str) -> str:
        """Publish writes labels; an environment's parameters belong to its deploys."""
        if label in self.environments:
            raise BadInput(
                f"{label!r} is an environment: its image parameters are written only by "
                f"deploys (publish to latest or another label, then `tf-release apply --env "
                f"{label}`)"
            )
        return self.check_label(label)


def find_config(explicit: str | None = None, start: Path | None = None) -> Path:
    """--config, then TF_RELEASE_CONFIG, then tf-release.toml here or in a parent folder."""
    named = explicit or os.environ.get(CONFIG_VARIABLE)
    if named:
        path = Path(named)
        if not path.is_file():
            raise BadInput(f"config file {path} does not exist")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / naming.CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise BadInput(
        f"no {naming.CONFIG_NAME} in {here} or its parents: "
        "create one (see README) or pass --config"
    )


def _binary(base: Path, value: str | None) -> str | None:
    """`terraform_bin`: a name is looked up on PATH; a path is relative to the config file's
    folder, like every path in it (Terraform runs in terraform_dir, where a relative path
    would name another file)."""
    if value is None or ("/" not in value and os.sep not in value):
        return value
    return str((base / Path(value).expanduser()).resolve())


def _check_shared_backends(path: Path, environments: dict[str, Environment]) -> None:
    """Terraform keeps one backend a folder: environments sharing a terraform_dir with different
    backend_config would re-initialise it at each deploy, which only -reconfigure allows, and
    tf-release never passes it (it would start from an empty state after a typo)."""
    first: dict[Path, Environment] = {}
    for environment in environments.values():
        if environment.terraform_dir is None:
            continue
        other = first.setdefault(environment.terraform_dir, environment)
        if other.backend_config != environment.backend_config:
            raise BadInput(
                f"{path}: environments {other.name} and {environment.name} share terraform_dir "
                f"{environment.terraform_dir} with different backend_config: Terraform keeps one "
                "backend a folder; give each the same backend_config and its own `workspace`, "
                "or a folder of its own"
            )


def missing_paths(env: Environment) -> list[str]:
    """The folder and files an environment names that are not there: checked before a deploy
    writes anything, and by `check-config` (the pre-commit hook), which needs no AWS."""
    missing = []
    if env.terraform_dir is not None and not env.terraform_dir.is_dir():
        missing.append(f"terraform_dir of {env.name} does not exist: {env.terraform_dir}")
    missing += [
        f"var_files of {env.name}: {var_file} does not exist"
        for var_file in env.var_files
        if not var_file.is_file()
    ]
    return missing


def load_config(path: Path) -> Config:
    try:
        document = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"{path}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{path}: not valid TOML: {error}") from None
    _check_names(path, document.get("project"), document.get("environments"))
    schemas.validate("config", document, str(path))
    if "environments" not in document:
        raise _no_environments(path)
    try:
        for name, table in document.get("environments", {}).items():
            naming.check_environment_name(name)
            if "role_arn" in table:
                naming.check_role_arn(table["role_arn"])
            for key in ("ecs_timeout", "verify_timeout"):
                if not math.isfinite(table.get(key, 1)):  # TOML allows inf and nan
                    raise BadInput(f"environments.{name}.{key}: must be a finite number of seconds")
        for name in document.get("images", ()):
            naming.check_image_name(name)
    except BadInput as error:
        raise BadInput(f"{path}: {error}") from None
    base = path.resolve().parent

    def inside(name: str, key: str, value: str) -> Path:
        """A path from the config, refused when it leads out of the config file's folder."""
        resolved = (base / value).resolve()
        if not resolved.is_relative_to(base):
            raise BadInput(
                f"{path}: environments.{name}.{key}: {value!r} is outside the project folder {base}"
            )
        return resolved

    environments = {
        name: Environment(
            name=name,
            promote_from=table["promote_from"],
            terraform_dir=inside(name, "terraform_dir", table["terraform_dir"])
            if "terraform_dir" in table
            else None,
            var_files=tuple(inside(name, "var_files", item) for item in table.get("var_files", ())),
            workspace=table.get("workspace"),
            backend_config=dict(table.get("backend_config", {})),
            role_arn=table.get("role_arn"),
            ecs_services=tuple(table.get("ecs_services", ())),
            ecs_timeout=float(table.get("ecs_timeout", ECS_TIMEOUT)),
            verify=tuple(tuple(command) for command in table.get("verify", ())),
            verify_timeout=float(table.get("verify_timeout", VERIFY_TIMEOUT)),
            atomic=table.get("atomic", False),
            pin_digests=table.get("pin_digests", True),
            rules=_rules(path, name, table),
        )
        for name, table in document.get("environments", {}).items()
    }
    for environment in environments.values():
        source = environment.promote_from
        if source != naming.LATEST and source not in environments:
            raise BadInput(
                f"{path}: environments.{environment.name}.promote_from: {source!r} is neither "
                "'latest' nor a configured environment"
            )
        if source == environment.name:
            raise BadInput(
                f"{path}: environments.{environment.name}.promote_from: an environment cannot "
                "promote from itself"
            )
        if environment.rules.soak is not None and source not in environments:
            raise BadInput(
                f"{path}: environments.{environment.name}.soak: needs promote_from to be an "
                f"environment ({source!r} is a label: nothing has run its images)"
            )
    _check_promotion_chains(path, environments)
    _check_shared_backends(path, environments)
    images = document.get("images")
    return Config(
        path=path,
        project=document["project"],
        bucket=document["bucket"],
        environments=environments,
        region=document.get("region"),
        images=None if images is None else tuple(images),
        terraform_bin=_binary(base, document.get("terraform_bin")),
        registries={
            host: RegistrySettings(**settings)
            for host, settings in document.get("registries", {}).items()
        },
    )


def _check_names(path: Path, project: object, environments: object) -> None:
    """Said in a sentence before the schema speaks (it would quote its own rules)."""
    if isinstance(project, str):
        try:
            naming.check_project_name(project)
        except BadInput as error:
            raise BadInput(f"{path}: project: {error}") from None
    if environments == {}:
        raise _no_environments(path)
    if isinstance(environments, dict) and naming.LATEST in environments:
        raise BadInput(
            f"{path}: environments: `{naming.LATEST}` is the label CI publishes to, not an "
            "environment name: rename [environments.latest] (stage, say)"
        )


def _no_environments(path: Path) -> BadInput:
    return BadInput(
        f'{path}: no environments: add an [environments.stage] table with promote_from = "latest"'
    )


def _check_promotion_chains(path: Path, environments: dict[str, "Environment"]) -> None:
    """Every environment's promote_from chain must reach `latest`: a cycle never gets images."""
    for name in environments:
        chain = [name]
        while (source := environments[chain[-1]].promote_from) != naming.LATEST:
            if source in chain:
                cycle = [*chain[chain.index(source) :], source]
                steps = ", which promotes from ".join(cycle[1:])
                raise BadInput(
                    f"{path}: environments.{cycle[0]}.promote_from: {cycle[0]} promotes from "
                    f"{steps} (a cycle): the first environment must promote from "
                    f'"{naming.LATEST}"'
                )
            chain.append(source)


def _rules(path: Path, name: str, table: dict[str, object]) -> Rules:
    try:
        return load_rules(table, f"environments.{name}")
    except BadInput as error:
        raise BadInput(f"{path}: {error}") from None


def starter_config(
    project: str, bucket: str, environments: list[str], region: str | None = None
) -> str:
    """A commented tf-release.toml; each environment promotes from the one before it."""
    lines = [
        f"#:schema ./{naming.CONFIG_SCHEMA_NAME}",
        "# tf-release configuration: see docs/configuration.md for every key.",
        f'project = "{project}"          # SSM: /{project}/image_ids/<label>/<image>',
        f"bucket  = {json.dumps(bucket)}   # S3: manifests, environment state, deployment records",
    ]
    lines.append(
        f"region  = {json.dumps(region)}"
        if region
        else '# region = "eu-west-1"   # default: the AWS chain'
    )
    lines += [
        '# images = ["api", "worker"]   # optional allow-list of image names',
        "",
    ]
    source = naming.LATEST
    for name in environments:
        lines += [
            f"[environments.{name}]",
            f'promote_from = "{source}"',
            f'# terraform_dir = "infra/{name}"   # without it, deploy only writes SSM',
            '# role_arn = "arn:aws:iam::111122223333:role/release"   # SSM in another account',
        ]
        if name == environments[-1] and source != naming.LATEST:
            lines += [
                f'# soak = "2h"   # promote only images {source} has run this long',
                '# freeze = ["Fri 16:00 - Mon 08:00", "2026-12-22 - 2027-01-04"]   # no deploys',
                '# timezone = "Europe/London"   # of the freeze windows (default: UTC)',
            ]
        lines.append("")
        source = name
    return "\n".join(lines)
