"""Whether the images a release names exist, and their digests, in whichever registry holds
them: ECR through its API (ecr.py), any other registry through the OCI distribution API.

An image is asked about with one `HEAD /v2/<repository>/manifests/<tag>`, after one `GET /v2/`
per registry that learns how it wants to be authenticated, as Docker does: anonymously, with
basic credentials, or with a bearer token from the realm its challenge names (one per
repository). Credentials are Docker's own (see `DockerCredentials`). A registry that
`[registries."HOST"]` says not to check is never asked.
"""

import base64
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from tf_release.model import naming
from tf_release.model.config import RegistrySettings
from tf_release.model.errors import RegistryFailure
from tf_release.stores.ecr import ImageRegistry as EcrImages
from tf_release.stores.parallel import in_parallel

# What a tag may name, newest first: a multi-platform index or a single image, OCI or Docker's.
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
TIMEOUT = 15.0  # seconds for one request: a registry that takes longer is as good as down
ATTEMPTS = 5  # for 429 (Docker Hub's pull limits) and 5xx; the last one's answer is reported
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", DOCKER_HUB_API)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
NOT_FOUND = "credentials not found in native keychain"  # every helper's answer for "none"


@dataclass(frozen=True)
class Login:
    user: str
    secret: str = field(repr=False)
    source: str  # where it came from, for messages: "~/.docker/config.json", "helper ecr-login"


class DockerCredentials:
    """The credentials `docker login` (or `podman login`, `skopeo login`) left: in
    REGISTRY_AUTH_FILE, then $DOCKER_CONFIG/config.json (~/.docker/config.json). In each file a
    registry's `credHelpers` entry wins, then `credsStore`, then its `auths` entry; the helpers
    are Docker's `docker-credential-NAME get` programs, found on PATH."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._found: dict[str, Login | None] = {}

    @classmethod
    def from_environment(cls) -> "DockerCredentials":
        files = []
        if os.environ.get("REGISTRY_AUTH_FILE"):
            files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
        elif os.environ.get("XDG_RUNTIME_DIR"):  # where podman and skopeo log in by default
            files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
        docker = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
        files.append(docker / "config.json")
        return cls(files)

    def login(self, host: str) -> Login | None:
        with self._lock:
            if host not in self._found:
                self._found[host] = self._look_up(host)
            return self._found[host]

    def _look_up(self, host: str) -> Login | None:
        keys = DOCKER_HUB_KEYS if host == naming.DOCKER_HUB else (host,)
        for path in self.files:
            document = _read_config(path)
            if document is None:
                continue
            helpers = document.get("credHelpers") or {}
            for key in keys:
                if key in helpers:
                    return _from_helper(str(helpers[key]), key)
            auths = {_host_of(key): value for key, value in (document.get("auths") or {}).items()}
            entry = next((auths[key] for key in map(_host_of, keys) if key in auths), None)
            if document.get("credsStore"):
                found = _from_helper(str(document["credsStore"]), keys[0])
                if found is not None or not (entry or {}).get("auth"):
                    return found
            if entry and entry.get("auth"):
                return _decoded(entry["auth"], path)
        return None


def _host_of(key: str) -> str:
    """`https://ghcr.io/v1/` and `ghcr.io` name the same registry in config.json's auths."""
    return urllib.parse.urlsplit(key).netloc if "://" in key else key.rstrip("/")


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise RegistryFailure(f"cannot read registry credentials from {path}: {error}") from None
    if not isinstance(document, dict):
        raise RegistryFailure(f"cannot read registry credentials from {path}: not a JSON object")
    return document


def _decoded(auth: str, path: Path) -> Login:
    try:
        user, _, secret = base64.b64decode(auth).decode("utf-8").partition(":")
    except ValueError:
        raise RegistryFailure(f"{path}: an `auths` entry is not base64 of user:secret") from None
    return Login(user, secret, str(path))


def _from_helper(name: str, server: str) -> Login | None:
    program = f"docker-credential-{name}"
    path = shutil.which(program)
    if path is None:
        raise RegistryFailure(
            f"{program} is not on PATH, and Docker's config.json names it for {server}: "
            "install it, or log in again"
        )
    try:
        answer = subprocess.run(
            [path, "get"], input=server, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        raise RegistryFailure(f"{program} get did not answer within 60 s") from None
    if answer.returncode != 0:
        if NOT_FOUND in answer.stdout + answer.stderr:
            return None
        said = (answer.stderr or answer.stdout).strip().splitlines()
        raise RegistryFailure(f"{program} get failed: {said[-1] if said else answer.returncode}")
    try:
        found = json.loads(answer.stdout)
        return Login(found["Username"], found["Secret"], f"helper {name}")
    except (ValueError, KeyError, TypeError):
        raise RegistryFailure(f"{program} get answered something other than its JSON") from None


@dataclass
class _Answer:
    status: int
    headers: Message
    body: bytes = b""


class OciRegistries:
    """The OCI distribution API of every registry but ECR: HEAD a manifest, nothing else."""

    def __init__(
        self, settings: Callable[[str], RegistrySettings], credentials: DockerCredentials
    ) -> None:
        self.settings = settings  # Config.registry: a host's [registries."HOST"] table
        self.credentials = credentials
        self._lock = threading.Lock()
        self._challenges: dict[str, str | None] = {}  # host: its WWW-Authenticate, or None
        self._tokens: dict[tuple[str, str], str] = {}  # (host, repository): bearer token
        self._host_locks: dict[str, threading.Lock] = {}

    def digest(self, url: str) -> str | None:
        """The digest of the manifest or index a URL's tag names; None when the registry has no
        such image. A refusal, a timeout or an unreachable registry is a RegistryFailure."""
        image = naming.parse_reference(url)
        path = image.manifest_path
        answer = self._send(image, "HEAD", path)
        if answer.status == 404 or _no_such_repository(answer):
            return None
        if answer.status != 200:
            raise self._refused(image, answer)
        digest = answer.headers.get("Docker-Content-Digest")
        if not digest:  # some registries say it only with the body
            whole = self._send(image, "GET", path)
            if whole.status != 200:
                raise self._refused(image, whole)
            digest = "sha256:" + hashlib.sha256(whole.body).hexdigest()
        return digest

    def reach(self, url: str) -> str:
        """How the registry of `url` is reached, for doctor: "anonymously", "as USER (from …)"."""
        image = naming.parse_reference(url)
        answer = self._send(image, "HEAD", image.manifest_path)
        if answer.status not in (200, 404):
            raise self._refused(image, answer)
        login = self.credentials.login(image.host) if self._challenge(image) else None
        return "anonymously" if login is None else f"as {login.user} (from {login.source})"

    # the requests

    def _send(self, image: naming.ImageReference, method: str, path: str) -> _Answer:
        challenge = self._challenge(image)
        headers = {"Accept": MANIFEST_TYPES, "User-Agent": "tf-release"}
        if challenge is not None:
            headers["Authorization"] = self._authorization(image, challenge)
        answer = self._request(image.host, method, self._base(image.host) + path, headers)
        if answer.status == 401 and challenge is None and answer.headers.get("WWW-Authenticate"):
            with self._lock:  # the ping needed no auth, this repository does: learn it, once
                self._challenges[image.host] = challenge = answer.headers["WWW-Authenticate"]
            headers["Authorization"] = self._authorization(image, challenge)
            answer = self._request(image.host, method, self._base(image.host) + path, headers)
        expired = answer.status == 401 and (challenge or "").lower().startswith("bearer")
        if expired and challenge is not None and not _no_such_repository(answer):
            with self._lock:  # the token expired: one fresh one, then the answer stands
                self._tokens.pop((image.host, image.repository), None)
            headers["Authorization"] = self._authorization(image, challenge)
            answer = self._request(image.host, method, self._base(image.host) + path, headers)
        return answer

    def _challenge(self, image: naming.ImageReference) -> str | None:
        """`GET /v2/` once per registry, as Docker pings it: its 401 says how to authenticate."""
        with self._lock:
            lock = self._host_locks.setdefault(image.host, threading.Lock())
        with lock:
            if image.host not in self._challenges:
                answer = self._request(image.host, "GET", self._base(image.host) + "/v2/", {})
                if answer.status == 401:
                    self._challenges[image.host] = answer.headers.get("WWW-Authenticate", "")
                elif answer.status in (200, 404):  # 404: a registry without the ping endpoint
                    self._challenges[image.host] = None
                else:
                    raise self._refused(image, answer)
            return self._challenges[image.host]

    def _authorization(self, image: naming.ImageReference, challenge: str) -> str:
        scheme, _, parameters = challenge.strip().partition(" ")
        if not scheme:
            raise RegistryFailure(
                f"{image.host} answered 401 without saying how to authenticate (no "
                "WWW-Authenticate): is it an OCI registry?"
            )
        login = self.credentials.login(image.host)
        if scheme.lower() == "basic":
            if login is None:
                raise RegistryFailure(self._wants_login(image))
            basic = base64.b64encode(f"{login.user}:{login.secret}".encode()).decode()
            return f"Basic {basic}"
        if scheme.lower() != "bearer":
            raise RegistryFailure(f"{image.host} asks for {scheme} authentication, which "
                                  "tf-release does not speak (Basic and Bearer only)")  # fmt: skip
        key = (image.host, image.repository)
        with self._lock:
            token = self._tokens.get(key)
        if token is None:
            token = self._token(image, dict(_CHALLENGE.findall(parameters)), login)
            with self._lock:
                self._tokens[key] = token
        return f"Bearer {token}"

    def _token(
        self, image: naming.ImageReference, challenge: dict[str, str], login: Login | None
    ) -> str:
        """A pull token for the repository from the realm the challenge names."""
        realm = challenge.get("realm")
        if not realm or urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryFailure(f"{image.host} sent a bearer challenge without a usable realm")
        query = {"scope": f"repository:{image.repository}:pull"}
        if challenge.get("service"):
            query["service"] = challenge["service"]
        headers = {"User-Agent": "tf-release"}
        if login is not None:
            basic = base64.b64encode(f"{login.user}:{login.secret}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        joiner = "&" if urllib.parse.urlsplit(realm).query else "?"
        answer = self._request(
            image.host, "GET", f"{realm}{joiner}{urllib.parse.urlencode(query)}", headers
        )
        if answer.status != 200:
            raise self._refused(image, answer, f"its token service {realm}")
        try:
            document = json.loads(answer.body)
            return str(document.get("token") or document["access_token"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RegistryFailure(f"{realm} answered without a token") from None

    def _request(self, host: str, method: str, url: str, headers: dict[str, str]) -> _Answer:
        """One request, retried with backoff on 429 (Docker Hub's pull limits), 5xx, a reset
        connection or a timeout."""
        for attempt in range(1, ATTEMPTS + 1):
            request = urllib.request.Request(url, method=method, headers=headers)
            try:
                with _opener(_tls()).open(request, timeout=TIMEOUT) as response:
                    answer = _Answer(response.status, response.headers, response.read())
            except urllib.error.HTTPError as error:
                answer = _Answer(error.code, error.headers, error.read())
            except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", error)
                if _transient(reason) and attempt < ATTEMPTS:
                    time.sleep(min(2.0**attempt, 30.0) * random.uniform(0.5, 1.0))
                    continue
                raise RegistryFailure(_unreachable(host, reason)) from None
            if (answer.status != 429 and answer.status < 500) or attempt == ATTEMPTS:
                return answer
            wait = min(2.0**attempt, 30.0) * random.uniform(0.5, 1.0)
            retry_after = answer.headers.get("Retry-After", "")
            if retry_after.isdigit():
                wait = min(float(retry_after), 30.0)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _base(self, host: str) -> str:
        scheme = "http" if self.settings(host).insecure else "https"
        return f"{scheme}://{DOCKER_HUB_API if host == naming.DOCKER_HUB else host}"

    # what went wrong, in a line

    def _wants_login(self, image: naming.ImageReference) -> str:
        return (
            f"{image.host} wants credentials for {image.repository}: log in "
            f"(`docker login {image.host}`), or set check = false under "
            f'[registries."{image.host}"] in tf-release.toml'
        )

    def _refused(
        self, image: naming.ImageReference, answer: _Answer, what: str = ""
    ) -> RegistryFailure:
        where = what or image.host
        if answer.status == 429 or b"TOOMANYREQUESTS" in answer.body:
            return RegistryFailure(
                f"{where} kept answering 429 Too Many Requests (a pull rate limit) to {ATTEMPTS} "
                f"tries: wait and run it again, or log in (`docker login {image.host}`) for a "
                "higher limit"
            )
        if answer.status in (401, 403):
            login = self.credentials.login(image.host)
            if login is None:
                return RegistryFailure(self._wants_login(image))
            return RegistryFailure(
                f"{where} refused {login.user} (from {login.source}) for {image.repository} "
                f"(HTTP {answer.status}): log in again (`docker login {image.host}`) with an "
                "account that may pull it"
            )
        return RegistryFailure(
            f"{where} answered HTTP {answer.status} for {image.url}: {_said(answer.body)}"
        )


def _no_such_repository(answer: _Answer) -> bool:
    """Docker Hub's answer for a repository that does not exist (or that this login may not
    pull): 401 `insufficient_scope` even with a token, where other registries answer 404."""
    challenge = answer.headers.get("WWW-Authenticate") or ""
    return answer.status == 401 and 'error="insufficient_scope"' in challenge


def _said(body: bytes) -> str:
    """The registry's own error message (the distribution spec's `errors` list), or its text."""
    try:
        errors = json.loads(body)["errors"]
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        text = " ".join(body.decode("utf-8", "replace").split())
        return text[:200] or "no message"


TRANSIENT = (
    TimeoutError,
    ConnectionResetError,
    http.client.RemoteDisconnected,
    http.client.IncompleteRead,
)


def _transient(reason: object) -> bool:
    """A connection reset or a timeout may pass; a refused connection or a bad certificate not."""
    return isinstance(reason, TRANSIENT)


def _unreachable(host: str, reason: object) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return (
            f"the certificate of the registry {host} is not trusted ({reason.verify_message}): "
            "if it is signed by a CA of your own, name its bundle in SSL_CERT_FILE"
        )
    return (
        f"cannot reach the registry {host} ({reason}): if this machine cannot reach it, set "
        f'check = false under [registries."{host}"] in tf-release.toml'
    )


class _SameHostAuthorization(urllib.request.HTTPRedirectHandler):
    """A redirect keeps the Authorization header only on the same host, as Docker's client
    does: a registry that sends a manifest read on to a CDN or a bucket never hands it the
    login."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != req.host:
            new.remove_header("Authorization")
        return new


def _opener(context: ssl.SSLContext) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _SameHostAuthorization()
    )


_contexts: dict[str | None, ssl.SSLContext] = {}


def _tls() -> ssl.SSLContext:
    """The system's trusted CAs, or SSL_CERT_FILE's (OpenSSL's variable): one context each."""
    wanted = os.environ.get("SSL_CERT_FILE")
    if wanted not in _contexts:
        _contexts[wanted] = ssl.create_default_context()
    return _contexts[wanted]


class Registries:
    """The images of any registry: ECR's through ECR, the rest through the OCI API, and those
    of a registry configured `check = false` not at all (present, with no digest)."""

    def __init__(self, ecr: EcrImages, oci: OciRegistries, checks: Callable[[str], bool]) -> None:
        self.ecr = ecr
        self.oci = oci
        self.checks = checks  # Config.checks: ECR's images always, others unless check = false

    def missing(self, urls: Iterable[str]) -> list[str]:
        """The images among `urls` their registry no longer has (ECR's, then the others)."""
        ecr, other = self._split(urls)
        gone = self.ecr.missing(ecr)
        found = in_parallel(self.oci.digest, other)
        return gone + [url for url, digest in zip(other, found, strict=True) if digest is None]

    def digests(self, urls: Iterable[str]) -> dict[str, str]:
        """The digest each image's tag names now; images their registry lacks are left out."""
        ecr, other = self._split(urls)
        found = self.ecr.digests(ecr)
        for url in other:
            digest = naming.digest_in(url)
            if digest:
                found[url] = digest
        asked = [url for url in other if url not in found]
        for url, digest in zip(asked, in_parallel(self.oci.digest, asked), strict=True):
            if digest is not None:
                found[url] = digest
        return found

    def _split(self, urls: Iterable[str]) -> tuple[list[str], list[str]]:
        ecr, other = [], []
        for url in sorted(set(urls)):
            if naming.parse_ecr(url) is not None:
                ecr.append(url)
            elif self.checks(url):
                other.append(url)
        return ecr, other
