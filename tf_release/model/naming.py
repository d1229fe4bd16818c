"""Name, version and key rules: every SSM name and S3 key the tool uses is spelled here, once."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from tf_release.model.errors import BadInput

IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION = re.compile(r"^v([1-9][0-9]{0,8})$")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}")

# Docker's reference grammar (distribution/reference), with a registry required.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
IMAGE_URL = re.compile(
    rf"^{_DOMAIN}/{_PATH_PART}(?:/{_PATH_PART})*(?::{_TAG}(?:@{_DIGEST})?|@{_DIGEST})$"
)

ECR_URL = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)

LATEST = "latest"
MAX_REASON = 1000
CONFIG_NAME = "tf-release.toml"  # looked for in the working folder and its parents
# the config's JSON Schema, written beside it by init: editors (Taplo, Even Better TOML) follow
# the config's first line, `#:schema ./tf-release.schema.json`, to it
CONFIG_SCHEMA_NAME = "tf-release.schema.json"
# the JSON Schemas shipped in model/schemas, as `tf-release schema NAME` names them
SCHEMAS = (
    "config",
    "manifest",
    "state",
    "deployment",
    "version-use",
    "deployment-period",
    "approval",
)


def check_image_name(name: str) -> str:
    if not IMAGE_NAME.fullmatch(name):
        raise BadInput(
            f"invalid image name {name!r}: use lowercase letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return name


MAX_TAG = 128  # Docker's limit on a tag's length
_LONG_TAG = re.compile(
    rf"^[^@]*/[^/:@]+:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{{{MAX_TAG},}})(?:@.*)?$"
)


def check_image_url(url: str) -> str:
    if len(url) > 1024 or not IMAGE_URL.fullmatch(url):
        long_tag = _LONG_TAG.match(url)
        if long_tag:
            raise BadInput(
                f"invalid image URL {url[:60]!r}…: its tag is {len(long_tag['tag'])} characters "
                f"long, and a tag may have at most {MAX_TAG}"
            )
        raise BadInput(
            f"invalid image URL {url!r}: expected registry/repository:tag or "
            "registry/repository@sha256:<digest>"
        )
    return url


@dataclass(frozen=True)
class EcrImage:
    url: str
    account: str
    region: str
    repository: str
    tag: str | None
    digest: str | None


def parse_ecr(url: str) -> EcrImage | None:
    """The parts of an ECR image reference; None for other registries (they are not checked)."""
    match = ECR_URL.fullmatch(url)
    if match is None:
        return None
    return EcrImage(url, **match.groupdict())


DOCKER_HUB = "docker.io"  # as image URLs name it; its API is at registry-1.docker.io


@dataclass(frozen=True)
class ImageReference:
    """An image URL's parts, as the OCI distribution API wants them."""

    url: str
    host: str  # as written: ghcr.io, docker.io, registry.internal:5000
    repository: str  # library/nginx for docker.io/nginx, as Docker Hub serves it
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        """What `/v2/<repository>/manifests/<reference>` takes: the digest when there is one."""
        return self.digest or self.tag or "latest"

    @property
    def manifest_path(self) -> str:
        return f"/v2/{self.repository}/manifests/{self.reference}"


DOCKER_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io"}


def parse_reference(url: str) -> ImageReference:
    """`host/repository:tag@digest` in parts (the URL is valid: see check_image_url), as Docker
    reads it: a first part with no `.` or `:` that is not `localhost` is a Docker Hub
    namespace (`acme/api:1` is `docker.io/acme/api:1`)."""
    first = url.partition("/")[0]
    digest = digest_in(url)
    path = repository_of(url)
    tagged = url.split("@", 1)[0][len(path) :]
    if "." in first or ":" in first or first == "localhost":
        host, name = first, path[len(first) + 1 :]
    else:
        host, name = DOCKER_HUB, path
    if host in DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    if host == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    return ImageReference(url, host, name, tagged[1:] or None, digest)


def registry_host(url: str) -> str:
    """The registry an image URL names, as `[registries."HOST"]` keys it (docker.io for
    Docker Hub, however the URL spells it)."""
    return parse_reference(url).host


def registry_of(url: str) -> str:
    """Where an image lives, as messages name it: "ECR", or the registry's host."""
    return "ECR" if parse_ecr(url) is not None else registry_host(url)


def repository_of(url: str) -> str:
    """`registry/repo` of `registry/repo:tag`, `…:tag@sha256:…` or `…@sha256:…`."""
    name = url.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name


def digest_in(url: str) -> str | None:
    """The digest a URL names itself (`…@sha256:…`), if any."""
    return url.split("@", 1)[1] if "@" in url else None


def pin(url: str, digest: str) -> str:
    """`registry/repo@sha256:…`: exactly the image the digest names, whatever the tag points at
    later."""
    return f"{repository_of(url)}@{digest}"


def short_digest(digest: str) -> str:
    return f"{digest[:13]}…"


def check_project_name(name: str) -> str:
    """The project prefixes every SSM name and S3 key, so it holds only what both accept."""
    if not PROJECT_NAME.fullmatch(name):
        raise BadInput(
            f"invalid project name {name!r}: use letters, digits, '.', '_' and '-', starting "
            "with a letter or digit, at most 64 characters (it prefixes SSM names and S3 keys)"
        )
    return name


def check_environment_name(name: str) -> str:
    if name == LATEST or not ENVIRONMENT_NAME.fullmatch(name):
        raise BadInput(
            f"invalid environment name {name!r}: use lowercase letters, digits, '_' and '-', "
            "starting with a letter (and not 'latest')"
        )
    return name


def check_label_name(name: str) -> str:
    """A label other than latest and the environments: named like an environment."""
    if not ENVIRONMENT_NAME.fullmatch(name):
        raise BadInput(
            f"invalid label {name!r}: use lowercase letters, digits, '_' and '-', "
            "starting with a letter"
        )
    return name


def check_role_arn(arn: str) -> str:
    if not ROLE_ARN.fullmatch(arn):
        raise BadInput(f"invalid role ARN {arn!r}: expected arn:aws:iam::<account>:role/<name>")
    return arn


def first_line(text: str) -> str:
    """The first line, and `…` when there were more: a reason or an error shown on one line
    (a table cell, an announcement, a Markdown summary)."""
    lines = [line.strip() for line in text.strip().splitlines()]
    first = lines[0] if lines else ""
    return f"{first} …" if len(lines) > 1 else first


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise BadInput("the reason is empty: say why this release is made (--reason)")
    if len(reason) > MAX_REASON:
        raise BadInput(f"the reason is {len(reason)} characters long; at most {MAX_REASON}")
    if any(ord(c) < 32 and c not in "\n\t" for c in reason):
        raise BadInput("the reason contains control characters")
    return reason


def format_optional_version(version: int | None) -> str | None:
    return None if version is None else format_version(version)


def parse_version(text: str) -> int:
    """'v7' -> 7; versions start at v1 and have no leading zeros."""
    match = VERSION.fullmatch(text)
    if not match:
        raise BadInput(f"invalid version {text!r}: expected v1, v2, v3 …")
    return int(match.group(1))


def format_version(number: int) -> str:
    return f"v{number}"


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(
            f"invalid time {text!r}: use ISO 8601, e.g. 2026-11-24T14:00 or 2026-11-24T14:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_minute(moment: datetime) -> str:
    """`2026-11-26 11:02Z`: a time as people read it in a table (JSON keeps the milliseconds)."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}Z"


def person(identity: str) -> str:
    """Who an AWS identity is, for a narrow column: an assumed role's session name
    (`…:assumed-role/deployer/alice` → `alice`, and `alice` too for an SSO session named
    `alice@example.com`), a user's name (`…:user/ops/alice` → `alice`), `root`; anything that
    is not an ARN as it is."""
    if not identity.startswith("arn:"):
        return identity
    name = identity.split(":", 5)[-1].rsplit("/", 1)[-1]
    return name.split("@", 1)[0] or name or identity


# SSM parameter names


def image_path(project: str, label: str) -> str:
    return f"/{project}/image_ids/{label}"


def image_parameter(project: str, label: str, image: str) -> str:
    return f"{image_path(project, label)}/{image}"


def version_parameter(project: str, environment: str) -> str:
    """The manifest version whose images SSM holds for an environment (read by Terraform)."""
    return f"/{project}/release_version/{environment}"


# S3 keys


def manifest_prefix(project: str, environment: str) -> str:
    return f"{project}/release_manifests/{environment}/"


def manifest_key(project: str, environment: str, version: int) -> str:
    return f"{manifest_prefix(project, environment)}{format_version(version)}.json"


def state_prefix(project: str, environment: str) -> str:
    return f"{project}/environments/{environment}/"


def state_key(project: str, environment: str) -> str:
    return f"{state_prefix(project, environment)}state.json"


def deployment_prefix(project: str, environment: str) -> str:
    return f"{project}/deployments/{environment}/"


def index_prefix(project: str, environment: str) -> str:
    """The indexes beside the record that keep `show` and the board flat (index.py)."""
    return f"{project}/release_index/{environment}/"


def version_use_key(project: str, environment: str, version: int) -> str:
    return f"{index_prefix(project, environment)}versions/{format_version(version)}.json"


def period_key(project: str, environment: str, starts: datetime) -> str:
    return f"{index_prefix(project, environment)}deployments/{starts:%Y-%m-%d}.json"


APPROVER_ID = re.compile(r"^[A-Za-z0-9:_+=,.@-]{1,200}$")  # an STS UserId, as AWS spells them
REVOKED = ".revoked.json"


def approvals_prefix(project: str, environment: str, version: int) -> str:
    """The approvals of one manifest, an object per approver (approval.py)."""
    return f"{project}/approvals/{environment}/{format_version(version)}/"


def approval_key(project: str, environment: str, version: int, approver_id: str) -> str:
    """Named by the approver's STS UserId, which an IAM policy can pin to the caller's own
    (`${aws:userid}`): nobody writes an approval under another's name."""
    if not APPROVER_ID.fullmatch(approver_id):
        raise BadInput(f"cannot name an approval after the caller id {approver_id!r}")
    return f"{approvals_prefix(project, environment, version)}{approver_id}.json"


def revocation_key(project: str, environment: str, version: int, approver_id: str) -> str:
    return approval_key(project, environment, version, approver_id).removesuffix(".json") + REVOKED


def doctor_prefix(project: str) -> str:
    """`tf-release doctor`'s probe objects, each written and removed by one run."""
    return f"{project}/doctor/"


_MAX_MS = 10**13 - 1


def newest_first(moment: datetime) -> str:
    """A fixed-width key part that sorts later times first, so a listing starts with the newest."""
    return f"{_MAX_MS - int(moment.timestamp() * 1000):013d}"


def from_newest_first(text: str) -> datetime:
    return datetime.fromtimestamp((_MAX_MS - int(text)) / 1000, tz=UTC)


def deployment_key(
    project: str,
    environment: str,
    finished_at: datetime,
    version: int,
    outcome: str,
    deployment_id: str,
) -> str:
    return (
        f"{deployment_prefix(project, environment)}{newest_first(finished_at)}_"
        f"{format_version(version)}_{outcome}_{deployment_id}.json"
    )
