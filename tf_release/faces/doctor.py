"""`tf-release doctor`: is this machine set up to release? One check a line, each with its fix."""

import json
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal

from tf_release.flows.views import state_problem
from tf_release.model import naming
from tf_release.model.config import Config, find_config, load_config
from tf_release.model.errors import AwsFailure, ReleaseError
from tf_release.stores.aws import PARAMETER_LIMIT, AwsSession
from tf_release.stores.bundle import Stores, open_stores
from tf_release.stores.s3 import ProbeObjects
from tf_release.terraform import processes
from tf_release.terraform.runner import (
    NEWEST_TERRAFORM,
    OLDEST_TERRAFORM,
    find_binary,
    terraform_version,
)

Level = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False  # ok, but worth acting on before it fails (doctor still exits 0)

    @property
    def level(self) -> Level:
        return "fail" if not self.ok else "warn" if self.warning else "ok"

    def to_document(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "level": self.level, "detail": self.detail}


def _check(name: str, probe: Callable[[], str]) -> Check:
    """Run one probe; a ReleaseError is that check's failure, with the fix in its message."""
    try:
        return Check(name, True, probe())
    except ReleaseError as error:
        return Check(name, False, str(error))


def diagnose(
    config_path: str | None,
    profile: str | None = None,
    region: str | None = None,
    read_only: bool = False,
) -> Iterator[Check]:
    """Each check as it finishes. `read_only` writes nothing: the conditional-write probe,
    the only check that writes, says it was skipped."""
    loaded: list[Config] = []

    def config() -> str:
        path = find_config(config_path)
        loaded.append(load_config(path))
        envs = ", ".join(loaded[0].environments) or "none"
        return (
            f"{path}: project {loaded[0].project}, bucket {loaded[0].bucket}, environments {envs}"
        )

    yield _check("config", config)
    if not loaded:
        return
    stores = open_stores(loaded[0], profile, region)
    identity = _check("aws identity", lambda: f"you are {stores.caller}")
    yield identity
    if not identity.ok:
        return
    for name, session in stores.images.label_sessions.items():
        yield _check(f"role_arn of {name}", partial(_role, session))
    bucket = _check("s3 bucket", lambda: _bucket(stores))
    yield bucket
    if bucket.ok:
        yield _skipped(stores) if read_only else _conditional_writes(stores)
    published: list[int] = []
    yield _check("ssm parameters", lambda: _parameters(stores, published))
    if published and _held(stores.config, published[0]) >= PARAMETER_LIMIT * NEAR_LIMIT:
        limit = _limit_warning(stores.config, published[0])
        yield Check("ssm parameter limit", True, limit, warning=True)
    if bucket.ok:
        yield from _states(stores)
    yield from _registries(stores)
    with_terraform = {
        n: e.terraform_dir for n, e in loaded[0].environments.items() if e.terraform_dir
    }
    binary: list[str] = []
    if with_terraform:
        yield _check("terraform", lambda: _terraform_version(loaded[0], binary))
    initialised: dict[Path, Check] = {}  # environments sharing a folder: one init
    for name, folder in with_terraform.items():
        if folder.resolve() not in initialised:
            initialised[folder.resolve()] = _check("", partial(_stack, folder, binary))
        yield replace(initialised[folder.resolve()], name=f"terraform_dir of {name}")


def _registries(stores: Stores) -> Iterator[Check]:
    """Each registry (other than ECR) that the latest label's images name, asked about one of
    them with the credentials a prepare would use."""
    try:
        latest = stores.images.read(naming.LATEST, tolerant=True)
    except ReleaseError:
        return  # the ssm check said why
    one_each: dict[str, str] = {}
    for url in sorted(latest.values()):
        if naming.parse_ecr(url) is None:
            one_each.setdefault(naming.registry_host(url), url)
    for host, url in one_each.items():
        if not stores.config.registry(host).check:
            yield Check(f"registry {host}", True, "not asked (check = false): images kept as "
                        "written, unpinned")  # fmt: skip
        else:
            yield _check(f"registry {host}", partial(_reach, stores, url))


def _reach(stores: Stores, url: str) -> str:
    return f"reachable {stores.registry.oci.reach(url)}"


def _role(session: AwsSession) -> str:
    return f"assumed: acting as {session.caller_arn()}"


def _bucket(stores: Stores) -> str:
    next(stores.deployments.keys(f"{stores.config.project}/"), None)  # one page of one listing
    return f"s3://{stores.config.bucket} can be listed"


CONDITIONAL_WRITES = "s3 conditional writes"
HONOURING = "AWS S3, moto, ministack"  # stores known to refuse what they must; s3rver does not
STALE_ETAG = '"00000000000000000000000000000000"'  # no object's: a swap against it must lose


def _probes(stores: Stores) -> ProbeObjects:
    return ProbeObjects(stores.deployments.session, stores.config.bucket, stores.config.project)


def _skipped(stores: Stores) -> Check:
    return Check(
        CONDITIONAL_WRITES,
        True,
        f"skipped (--read-only): nothing written; without it doctor writes a probe object "
        f"under s3://{stores.config.bucket}/{_probes(stores).prefix} to check that the bucket "
        "refuses a second create-once write",
    )


def _conditional_writes(stores: Stores) -> Check:
    """The record is race-safe only if the bucket refuses a second `If-None-Match: *` write of
    a key (one version number, one record each) and a write with a stale `If-Match` ETag (the
    state's compare-and-swap, which holds the deploy lock). A fresh object shows it, removed
    after."""
    probes = _probes(stores)
    key = probes.new_key()
    written: list[bool] = []
    check = _check(CONDITIONAL_WRITES, partial(_refusals, probes, key, written))
    if not written:
        return check
    try:
        probes.delete(key)
    except ReleaseError as error:
        left = f"; could not remove it ({error}): delete it by hand"
        return replace(check, detail=check.detail + left, warning=True)
    return replace(check, detail=check.detail + "; removed it")


def _refusals(probes: ProbeObjects, key: str, written: list[bool]) -> str:
    """The probe's three writes; `written` says whether the object is there to remove."""
    where = f"s3://{probes.bucket}/{key}"
    body = json.dumps({"written_by": "tf-release doctor", "safe_to_delete": True}).encode()
    try:
        first = probes.write(key, body, create=True)
    except AwsFailure as error:
        raise AwsFailure(
            f"{error}; this check writes (and removes) one object under {probes.prefix}, "
            "which `tf-release iam-policy` allows; `tf-release doctor --read-only` skips it"
        ) from None
    if first is None:
        raise ReleaseError(
            f"the store refused to create {where}, a new key, with If-None-Match: * (412): it "
            "would refuse every new manifest and record too; use a store known to honour "
            f"conditional writes ({HONOURING})"
        )
    written.append(True)
    if probes.write(key, body, create=True) is not None:
        raise ReleaseError(
            f"wrote {where} twice with If-None-Match: * and the store accepted both: it ignores "
            "conditional writes, so two writers would get one version number and two deploys "
            f"one lock; use a store known to honour them ({HONOURING})"
        )
    if probes.write(key, body, etag=STALE_ETAG) is not None:
        raise ReleaseError(
            f"wrote {where}; the store refused a second If-None-Match: * write but accepted one "
            "with a stale ETag (If-Match): it ignores compare-and-swap, so two deploys would get "
            f"one lock; use a store known to honour conditional writes ({HONOURING})"
        )
    return (
        f"wrote {where} ({len(body)} bytes); the store refused a second create-once write "
        "(If-None-Match: *) and a write with a stale ETag (If-Match), as version numbers and "
        "the deploy lock need"
    )


def _states(stores: Stores) -> Iterator[Check]:
    """One read per environment: a line for each whose state is broken or missing (with the
    repair command), or one line saying all are readable."""
    failed = []
    for name in stores.config.environments:
        check = _check(f"state of {name}", partial(_state, stores, name))
        if not check.ok:
            failed.append(check)
            yield check
    if not failed:
        names = ", ".join(stores.config.environments) or "no environments"
        yield Check("environment states", True, f"{names}: readable")


def _state(stores: Stores, name: str) -> str:
    problem = state_problem(stores, name)
    if problem is not None:
        raise ReleaseError(problem)
    return "readable"


NEAR_LIMIT = 0.8  # of SSM's standard parameters per account and region


def _parameters(stores: Stores, published: list[int]) -> str:
    found = stores.images.read(naming.LATEST)
    published.append(len(found))
    path = naming.image_path(stores.config.project, naming.LATEST)
    held = _held(stores.config, len(found))
    return (
        f"{path}: {len(found)} image(s) published; the project will hold {held:,} "
        f"parameter(s) of SSM's {PARAMETER_LIMIT:,} a region"
    )


def _held(config: Config, published: int) -> int:
    """images * (environments + 1) image pointers, and a version pointer per environment: what
    the project holds once every environment runs every image (the allow-list, or what
    `latest` holds)."""
    images = len(config.images) if config.images is not None else published
    environments = len(config.environments)
    return images * (environments + 1) + environments


def _limit_warning(config: Config, published: int) -> str:
    return (
        f"the project will hold {_held(config, published):,} parameters, near SSM's "
        f"{PARAMETER_LIMIT:,} standard parameters an account holds in a region, with the rest of "
        "the account's: deploys will fail with ParameterLimitExceeded once it is reached; delete "
        "parameters nobody uses, or set the default parameter tier to Intelligent-Tiering"
    )


def _terraform_version(config: Config, found: list[str]) -> str:
    binary = find_binary(config.terraform_bin)
    version = terraform_version(binary)
    supported = _supported(version)
    if supported:
        raise ReleaseError(f"{binary} is Terraform {version}: {supported}")
    found.append(binary)
    return f"{binary}, Terraform {version}"


def _supported(version: str) -> str | None:
    """Why a Terraform version is outside the range tf-release is tested on, or None."""
    oldest, newest = (".".join(map(str, v)) for v in (OLDEST_TERRAFORM, NEWEST_TERRAFORM))
    try:
        minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return f"not a version tf-release knows; it supports Terraform {oldest} to {newest}"
    if OLDEST_TERRAFORM <= minor <= NEWEST_TERRAFORM:
        return None
    return (
        f"tf-release supports Terraform {oldest} to {newest}: install one of those and set "
        "`terraform_bin` (or TF_RELEASE_TERRAFORM), or pip install 'tf-release[terraform]' for "
        f"the bundled {newest}"
    )


def _stack(folder: Path, binary: list[str]) -> str:
    """The folder holds Terraform, and (with a working binary) initialises: the providers and
    modules it needs can be installed here, which a deploy's `terraform init` needs first."""
    if not folder.is_dir():
        raise ReleaseError(f"{folder} does not exist: fix terraform_dir in tf-release.toml")
    if not any(folder.glob("*.tf")) and not any(folder.glob("*.tf.json")):
        raise ReleaseError(f"{folder} holds no .tf files: is it the right folder?")
    if not binary:
        return str(folder)
    return f"{folder}: initialises{_init(folder, binary[0])}"


INIT_SECONDS = 600
LOCK_WOULD_CHANGE = "Provider dependency changes detected"  # -lockfile=readonly's refusal


def _init(folder: Path, binary: str) -> str:
    """`terraform init` that leaves the folder as it was: its data directory (.terraform) a
    scratch one, no backend, and the lock file read-only (a missing or incomplete one is
    Terraform's refusal to write it, after every provider installed: a deploy's init writes it).
    Returns the providers installed, as " (hashicorp/aws v5.100.0, …)"."""
    with tempfile.TemporaryDirectory(prefix="tf-release-doctor-") as scratch:
        done = processes.run(
            [binary, "init", "-input=false", "-backend=false", "-lockfile=readonly", "-no-color"],
            folder,
            {
                "TF_DATA_DIR": scratch,
                "TF_IN_AUTOMATION": "1",
                "TF_INPUT": "0",
                "TF_WORKSPACE": None,
            },
            timeout=INIT_SECONDS,
        )
    if done.timed_out:
        raise ReleaseError(f"terraform init in {folder} did not finish in {INIT_SECONDS} s")
    problem = _first_error(done.err + done.out)
    if done.code != 0 and not problem.startswith(LOCK_WOULD_CHANGE):
        missing = re.search(r"for provider (\S+): (.*)", problem)
        if missing:
            raise ReleaseError(
                f"{folder} needs provider {missing[1]}, which Terraform cannot install here "
                f"({missing[2]}): add it to the provider mirror in your Terraform CLI config, "
                "let Terraform reach its registry, or use a stack that does not need it"
            )
        raise ReleaseError(f"terraform init fails in {folder}: {problem}")
    installed = re.findall(r"^- (?:Installed|Using) (\S+) (v\S+)", done.out, flags=re.M)
    return f" ({', '.join(' '.join(found) for found in installed)})" if installed else ""


def _first_error(output: str) -> str:
    """Terraform's first error as one line: its summary, then the paragraph that explains it."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Error: ")), None)
    if start is None:
        return next((line for line in reversed(lines) if line.strip()), "no output")
    paragraph: list[str] = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        paragraph.append(line.strip())
    summary = lines[start].removeprefix("Error: ")
    return f"{summary}: {' '.join(paragraph)}" if paragraph else summary
