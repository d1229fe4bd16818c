"""A real OCI registry on 127.0.0.1, started and stopped by test fixtures, and images pushed to it.

tf-release checks that an image exists, and reads its digest, with one
`HEAD /v2/<name>/manifests/<tag>` to whatever registry the image names (issue #25). A fake
registry would only echo what we believe registries do; this runs the CNCF distribution
registry (Debian's `docker-registry`, 2.8), so a client that passes here speaks the protocol
as a real registry speaks it: its Accept negotiation, its 401s and WWW-Authenticate challenges,
its Docker-Content-Digest.

Three modes, the three ways a client has to authenticate:

- `anonymous`: plain HTTP, no auth (a registry inside a company network, or a public mirror).
- `basic`: htpasswd, over TLS because the registry refuses basic auth over plain HTTP. The CA
  is made per registry; a client under test trusts it through `SSL_CERT_FILE` (`env()`).
- `token`: the registry's own bearer-token auth, as Docker Hub, GHCR, ECR and most hosted
  registries do it. The token endpoint is `TokenServer`, a thread in the test process that
  signs JWTs with a throwaway key, can require basic credentials, and records what it was asked.

Images are pushed without Docker, through the registry's HTTP API (`Registry.push`), in the
shapes a client meets: an OCI image manifest, a Docker v2 manifest, an OCI index and a Docker
manifest list. What the registry served is read back from its own access log
(`mark` / `requests_since`), so a test can pin how many requests a command made.

Needs `docker-registry` on PATH (`apt-get install -y docker-registry`); `skopeo` is only used
by tests/cli/test_registry_support.py, to check this module against a second client.
"""

import base64
import contextlib
import datetime
import gzip
import hashlib
import http.client
import io
import ipaddress
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.moto import free_port
from tests.support.processes import stop

BINARY = "docker-registry"
APT_LINE = "apt-get install -y docker-registry skopeo"

Mode = Literal["anonymous", "basic", "token"]
Kind = Literal["manifest", "docker", "index", "docker-list"]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
# What a client that wants the digest of whatever the tag points at must send: the registry
# answers a HEAD or GET only with a media type the Accept header names, and otherwise 404s
# (OCI types), 400s (Docker types) or answers another manifest, digest and all (a Docker list
# to a client that only takes Docker manifests). HEAD_TABLE in
# tests/cli/test_registry_support.py pins what distribution 2.8 does for each Accept.
ALL_MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT_ALL = ", ".join(ALL_MANIFEST_TYPES)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# The one user of the basic-auth registry (and the token endpoint, when it asks for
# credentials). The htpasswd line is computed once and kept here rather than made per run: the
# registry only takes bcrypt, and this spares the tests a bcrypt dependency. Cost 4, the least
# bcrypt allows, because the registry checks the password on every request.
USER = "tf-release"
PASSWORD = "tf-release-registry-password"
HTPASSWD = f"{USER}:$2b$04$3j06Wxj/w7F1T1/l5QbEy.ByWoMPqzoo3un1MmRjVTRFuRzY4xIU2\n"

# What the token-auth registry and its token endpoint agree on (the JWT's `aud` and `iss`).
SERVICE = "tf-release-test-registry"
ISSUER = "tf-release-test-token-issuer"

# The query of the request `_sync` sends to learn the access log is complete; the log leaves
# these out.
_SYNC_PARAMETER = "tf-release-test-sync"
# The Apache "combined" line the registry writes to stdout for each request it served.
_ACCESS_LINE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<target>\S+) [^"]*" (?P<status>\d{3}) '
)


class Unavailable(Exception):
    """docker-registry is not installed here."""


# ---------------------------------------------------------------------------------------------
# TLS: a CA and a certificate for 127.0.0.1


@dataclass(frozen=True)
class Tls:
    """A throwaway CA and a server certificate for 127.0.0.1 (and localhost) that it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    *,
    issuer: x509.Certificate | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    """A certificate good for a day, with the extensions Python 3.13's strict verification asks
    of a CA (key usage, key identifiers) so a client on a newer Python trusts it too."""
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def make_tls(directory: Path) -> Tls:
    """A new CA and a certificate for 127.0.0.1 signed by it, written into `directory`
    (ca.pem, server.pem, server-key.pem). EC keys: they are made in a millisecond."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("tf-release test CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, issuer=ca, issuer_key=ca_key, server=True)
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    tls.ca_file.write_bytes(_pem(ca))
    tls.cert_file.write_bytes(_pem(server))
    tls.key_file.write_bytes(_private_pem(server_key))
    return tls


# ---------------------------------------------------------------------------------------------
# Token auth: JWTs and the token endpoint


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(key: rsa.RSAPublicKey) -> str:
    """The key id distribution 2.8 gives a key of its `rootcertbundle` (docker/libtrust's
    fingerprint: SHA-256 of the DER public key, first 240 bits, base32 in 12 groups of 4). A
    JWT whose header has this `kid` is checked against that key."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


class TokenRequest(NamedTuple):
    """One request the token endpoint got: `user` is None for an anonymous one, `status` what it
    answered (200 with a token, 401 for missing or wrong credentials)."""

    service: str | None
    scopes: tuple[str, ...]
    user: str | None
    status: int


class TokenSigner:
    """Signs registry bearer tokens (RS256 JWTs) with a throwaway RSA key whose self-signed
    certificate is the registry's `rootcertbundle`.

    The JWT header names the key in two ways, both of which distribution 2.8 accepts: `x5c`
    (the certificate, which the registry verifies against the bundle; distribution 3 accepts it
    too) and `kid` (the libtrust id of the key, which only 2.8 knows). `header` picks which."""

    def __init__(self, directory: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.certificate = _certificate("tf-release test token signer", self.key)
        self.bundle = directory / "token-signer.pem"
        self.bundle.write_bytes(_pem(self.certificate))
        self.kid = libtrust_key_id(self.key.public_key())
        self.x5c = base64.b64encode(
            self.certificate.public_bytes(serialization.Encoding.DER)
        ).decode()

    def sign(
        self,
        access: Sequence[Mapping[str, Any]],
        *,
        subject: str = "",
        lifetime: int = 300,
        header: Literal["x5c", "kid", "both"] = "x5c",
        audience: str = SERVICE,
        issuer: str = ISSUER,
    ) -> str:
        """A token granting `access` ([{"type": "repository", "name": ..., "actions": [...]}])."""
        now = int(time.time())
        head: dict[str, Any] = {"typ": "JWT", "alg": "RS256"}
        if header in ("x5c", "both"):
            head["x5c"] = [self.x5c]
        if header in ("kid", "both"):
            head["kid"] = self.kid
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + lifetime,
            "nbf": now - 30,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": list(access),
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (head, claims)
        )
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def parse_scope(scope: str) -> dict[str, Any] | None:
    """`repository:team/app:pull,push` as the JWT's access entry (None when malformed)."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


class TokenServer:
    """The token endpoint of the token-auth registry, as small as the protocol allows: GET
    /token?service=...&scope=... answers `{"token": JWT, ...}` granting what the scopes ask.

    Like Docker Hub, it answers anonymous requests unless `require_credentials` is set (as for a
    private repository), and always refuses wrong credentials with 401. Every request is kept
    in `requests`, so a test can check a client used the bearer flow and count its token
    requests. Serves HTTPS when the registry does (the same certificate)."""

    def __init__(self, signer: TokenSigner, tls: Tls | None) -> None:
        self.signer = signer
        self.require_credentials = False
        self.credentials = (USER, PASSWORD)
        self.lifetime = 300
        # The JSON fields the token is sent in: Docker Hub sends both; the spec allows either.
        self.fields: tuple[str, ...] = ("token", "access_token")
        self._requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.server_context().wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if tls is not None else "http"
        self.port = int(self._server.server_address[1])
        self.realm = f"{self.scheme}://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    @contextlib.contextmanager
    def credentials_required(self) -> Iterator[None]:
        """Anonymous token requests refused (401) inside the block: a private repository."""
        self.require_credentials = True
        try:
            yield
        finally:
            self.require_credentials = False

    def reset(self) -> None:
        """Back to the defaults, requests forgotten (the server lives for the session)."""
        self.require_credentials = False
        self.credentials = (USER, PASSWORD)
        self.lifetime = 300
        self.fields = ("token", "access_token")
        self.clear()

    def _answer(
        self, query: Mapping[str, list[str]], authorization: str | None
    ) -> tuple[int, dict[str, Any], str | None]:
        user: str | None = None
        if authorization is not None:
            scheme, _, value = authorization.partition(" ")
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                user, password = "", ""
            if scheme.lower() != "basic" or (user, password) != self.credentials:
                return 401, {"details": "incorrect username or password"}, user
        elif self.require_credentials:
            return 401, {"details": "authentication required"}, None
        scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
        access = [entry for entry in map(parse_scope, scopes) if entry is not None]
        token = self.signer.sign(access, subject=user or "", lifetime=self.lifetime)
        issued = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: dict[str, Any] = {name: token for name in self.fields}
        body.update(expires_in=self.lifetime, issued_at=issued)
        return 200, body, user

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/token":
                    self._send(404, {"details": "not found"})
                    return
                query = urllib.parse.parse_qs(url.query)
                status, body, user = server._answer(query, self.headers.get("Authorization"))
                scopes = tuple(s for value in query.get("scope", []) for s in value.split(" ") if s)
                with server._lock:
                    server._requests.append(
                        TokenRequest(query.get("service", [None])[0], scopes, user, status)
                    )
                self._send(status, body)

            def _send(self, status: int, body: Mapping[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="tf-release test token"')
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read .requests
                pass

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------------------------------------
# The registry


class Response(NamedTuple):
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class Request(NamedTuple):
    """One request the registry served, from its access log (`path` without the query)."""

    method: str
    path: str
    status: int
    query: str


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode()


def _layer(text: str) -> bytes:
    """A gzipped tar of one file, byte for byte the same for the same text (no timestamps), so
    the same build gives the same digest."""
    data = text.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("build.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(archive.getvalue(), mtime=0)


class Registry:
    """docker-registry on 127.0.0.1:<free port>, filesystem storage under `directory`, deletes
    allowed, in one of three modes (see the module's docstring). TLS defaults to on for the
    auth modes (basic requires it), off for anonymous."""

    def __init__(
        self, directory: Path, mode: Mode = "anonymous", *, tls: bool | None = None
    ) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            raise Unavailable(f"{BINARY} is not on PATH ({APT_LINE})")
        if mode not in ("anonymous", "basic", "token"):
            raise ValueError(f"mode {mode!r}: expected anonymous, basic or token")
        tls = mode != "anonymous" if tls is None else tls
        if mode == "basic" and not tls:
            raise ValueError("the registry only allows basic auth over TLS")
        self.mode: Mode = mode
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.tls = make_tls(directory / "tls") if tls else None
        self.scheme = "https" if tls else "http"
        self.signer = TokenSigner(directory) if mode == "token" else None
        self.token_server = TokenServer(self.signer, self.tls) if self.signer else None
        self.access_log = directory / "access.log"
        self.error_log = directory / "registry.log"
        self._syncs = 0
        self._names = 0
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    # -- what tests read

    @property
    def host(self) -> str:
        """127.0.0.1:PORT, the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def url(self, name: str, reference: str) -> str:
        """The image reference 127.0.0.1:PORT/name:tag, or name@sha256:... for a digest."""
        separator = "@" if reference.startswith("sha256:") else ":"
        return f"{self.host}/{name}{separator}{reference}"

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password) the registry (basic) or its token endpoint (token) accepts."""
        return None if self.mode == "anonymous" else (USER, PASSWORD)

    @property
    def ca_file(self) -> Path | None:
        """The CA bundle a client must trust to talk to this registry (None over HTTP)."""
        return self.tls.ca_file if self.tls else None

    def env(self) -> dict[str, str]:
        """Environment variables a client process needs to trust this registry: SSL_CERT_FILE,
        which OpenSSL and so Python's ssl.create_default_context() read (it replaces the
        system's CAs, so a test that needs both must concatenate)."""
        return {"SSL_CERT_FILE": str(self.tls.ca_file)} if self.tls else {}

    def new_name(self, stem: str = "app") -> str:
        """A repository name no test has used (the registry lives for the session)."""
        self._names += 1
        return f"{stem}-{self._names}"

    # -- starting and stopping

    def _config(self) -> dict[str, Any]:
        http: dict[str, Any] = {
            "addr": self.host,
            "secret": secrets.token_hex(16),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        }
        if self.tls is not None:
            http["tls"] = {"certificate": str(self.tls.cert_file), "key": str(self.tls.key_file)}
        config: dict[str, Any] = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.directory / "storage")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.mode == "basic":
            htpasswd = self.directory / "htpasswd"
            htpasswd.write_text(HTPASSWD)
            config["auth"] = {"htpasswd": {"realm": "tf-release-test", "path": str(htpasswd)}}
        elif self.mode == "token":
            assert self.token_server is not None and self.signer is not None
            config["auth"] = {
                "token": {
                    "realm": self.token_server.realm,
                    "service": SERVICE,
                    "issuer": ISSUER,
                    "rootcertbundle": str(self.signer.bundle),
                }
            }
        return config

    def _start(self) -> None:
        # A free port can be taken between finding it and the registry binding it: try again.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        for _attempt in range(3):
            self.port = free_port()
            config = self.directory / "config.yml"  # JSON is YAML
            config.write_text(json.dumps(self._config(), indent=2))
            with self.access_log.open("wb") as out, self.error_log.open("wb") as err:
                self._process = subprocess.Popen(
                    [self._binary, "serve", str(config)],
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    env=environment,
                )
            if self._wait():
                return
        raise RuntimeError(f"docker-registry did not start: {self.error_log.read_text()[-2000:]}")

    def _wait(self) -> bool:
        """True once the registry answers; False if it exited (its port was taken)."""
        assert self._process is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                self.request("GET", "/v2/", auth=False)
                return True
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("docker-registry did not answer in 20 s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            stop(self._process)
        if self.token_server is not None:
            self.token_server.stop()

    # -- talking to it

    def _authorization(self, path: str) -> str | None:
        if self.mode == "basic":
            return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.mode == "token":
            assert self.signer is not None
            found = re.match(r"^/v2/(.+?)/(?:manifests|blobs|tags)/", path)
            access = (
                [{"type": "repository", "name": found[1], "actions": ["pull", "push", "delete"]}]
                if found
                else []
            )
            # Minted here, not asked of the token endpoint: pushing leaves its log alone.
            return "Bearer " + self.signer.sign(access, subject=USER)
        return None

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        auth: bool = True,
    ) -> Response:
        """One request to the registry (`path` with its query), authenticated as the push user
        unless `auth` is false. Any status is returned, none raised."""
        all_headers = dict(headers or {})
        if auth and (authorization := self._authorization(path)) is not None:
            all_headers.setdefault("Authorization", authorization)
        connection: http.client.HTTPConnection
        if self.tls is not None:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=10, context=self.tls.client_context()
            )
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=all_headers)
            answer = connection.getresponse()
            data = answer.read()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
        finally:
            connection.close()

    def head(
        self, name: str, reference: str, accept: str | None = ACCEPT_ALL, *, auth: bool = True
    ) -> Response:
        """HEAD /v2/<name>/manifests/<reference>, as tf-release does (Accept: every manifest
        type unless told otherwise; None sends no Accept)."""
        headers = {} if accept is None else {"Accept": accept}
        return self.request("HEAD", f"/v2/{name}/manifests/{reference}", headers=headers, auth=auth)

    def _check(self, response: Response, expected: int, what: str) -> Response:
        if response.status != expected:
            raise RuntimeError(f"{what}: {response.status} {response.body[:500]!r}")
        return response

    def upload_blob(self, name: str, data: bytes) -> dict[str, Any]:
        """POST an upload, then PUT the blob with its digest; the blob's descriptor."""
        digest = _sha256(data)
        started = self._check(
            self.request("POST", f"/v2/{name}/blobs/uploads/"), 202, f"start upload to {name}"
        )
        location = urllib.parse.urlsplit(started.headers["location"])
        query = f"{location.query}&" if location.query else ""
        self._check(
            self.request(
                "PUT",
                f"{location.path}?{query}digest={urllib.parse.quote(digest)}",
                headers={"Content-Type": "application/octet-stream"},
                body=data,
            ),
            201,
            f"upload a blob to {name}",
        )
        return {"digest": digest, "size": len(data)}

    def put_manifest(self, name: str, reference: str, manifest: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or its digest; the digest the registry reports."""
        answer = self._check(
            self.request(
                "PUT",
                f"/v2/{name}/manifests/{reference}",
                headers={"Content-Type": media_type},
                body=manifest,
            ),
            201,
            f"put the manifest {name}:{reference}",
        )
        digest = answer.headers["docker-content-digest"]
        assert digest == _sha256(manifest), (digest, _sha256(manifest))
        return digest

    def _image(self, name: str, build: str, architecture: str, docker: bool) -> tuple[bytes, str]:
        """Upload one platform's config and layer; its manifest and media type."""
        layer = _layer(f"{name} build {build} linux/{architecture}\n")
        diff_id = _sha256(gzip.decompress(layer))
        config = _json(
            {
                "architecture": architecture,
                "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "config": {"Labels": {"org.opencontainers.image.version": build}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }
        )
        config_type, layer_type, media_type = (
            (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST)
            if docker
            else (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST)
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, **self.upload_blob(name, config)},
            "layers": [{"mediaType": layer_type, **self.upload_blob(name, layer)}],
        }
        return _json(manifest), media_type

    def push(self, name: str, tag: str, kind: Kind = "manifest", build: str = "1") -> str:
        """Push an image and tag it; the digest the registry reports for the tag.

        kind: `manifest` an OCI image manifest, `docker` a Docker v2 manifest, `index` an OCI
        index of linux/amd64 and linux/arm64 OCI manifests, `docker-list` a Docker manifest
        list of Docker v2 manifests (the platform manifests are pushed first, by digest).
        The content depends on name, kind and build only: the same build pushed again, or under
        another tag, has the same digest; another build moves the tag to a new digest."""
        if kind in ("manifest", "docker"):
            manifest, media_type = self._image(name, build, "amd64", kind == "docker")
            return self.put_manifest(name, tag, manifest, media_type)
        if kind not in ("index", "docker-list"):
            raise ValueError(f"kind {kind!r}: expected manifest, docker, index or docker-list")
        docker = kind == "docker-list"
        entries = []
        for architecture in ("amd64", "arm64"):
            manifest, media_type = self._image(name, build, architecture, docker)
            digest = self.put_manifest(name, _sha256(manifest), manifest, media_type)
            entries.append(
                {
                    "mediaType": media_type,
                    "digest": digest,
                    "size": len(manifest),
                    "platform": {"architecture": architecture, "os": "linux"},
                }
            )
        list_type = DOCKER_LIST if docker else OCI_INDEX
        index = _json({"schemaVersion": 2, "mediaType": list_type, "manifests": entries})
        return self.put_manifest(name, tag, index, list_type)

    def delete(self, name: str, digest: str) -> None:
        """Delete the manifest `digest`: every tag that pointed at it is gone with it (HEAD by
        tag then answers 404 MANIFEST_UNKNOWN)."""
        self._check(
            self.request("DELETE", f"/v2/{name}/manifests/{digest}"), 202, f"delete {name}@{digest}"
        )

    # -- the request log

    def _sync(self) -> list[Request]:
        """Every request served so far, sentinels included. The registry writes a request's
        access-log line after its handler returns, which can be after the client has the
        answer (a body larger than the write buffer), so: send one more request, and wait for
        its line; every request answered before it is logged by then."""
        self._syncs += 1
        marker = f"{_SYNC_PARAMETER}={self._syncs}"
        self.request("GET", f"/v2/?{marker}", auth=False)
        deadline = time.monotonic() + 5
        while True:
            text = self.access_log.read_text(errors="replace")
            if marker in text:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the registry's access log never showed {marker}")
            time.sleep(0.005)
        found = []
        for line in text.splitlines():
            matched = _ACCESS_LINE.match(line)
            if matched:
                path, _, query = matched["target"].partition("?")
                found.append(Request(matched["method"], path, int(matched["status"]), query))
        return found

    def mark(self) -> int:
        """A point in the request log: `requests_since(mark)` lists what came after it."""
        return len(self._sync())

    def requests_since(self, mark: int) -> list[Request]:
        """The requests the registry served since `mark` (complete: see `_sync`)."""
        return [r for r in self._sync()[mark:] if _SYNC_PARAMETER not in r.query]

    def calls_since(self, mark: int) -> list[tuple[str, str]]:
        """(method, path) of `requests_since(mark)`: what a test usually compares."""
        return [(r.method, r.path) for r in self.requests_since(mark)]


# ---------------------------------------------------------------------------------------------
# Docker's client-side configuration


def write_docker_config(
    directory: Path,
    *,
    auths: Mapping[str, tuple[str, str] | Mapping[str, str]] | None = None,
    creds_store: str | None = None,
    cred_helpers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """DIRECTORY/config.json as `docker login` writes it; point DOCKER_CONFIG at DIRECTORY.

    `auths` maps a registry (as Docker keys it: "127.0.0.1:PORT", or
    "https://index.docker.io/v1/" for Docker Hub) to (user, password), written as
    `{"auth": base64("user:password")}`, or to a raw entry ({"identitytoken": ...}, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"auths": {}}
    for server, entry in (auths or {}).items():
        if isinstance(entry, tuple):
            user, password = entry
            config["auths"][server] = {
                "auth": base64.b64encode(f"{user}:{password}".encode()).decode()
            }
        else:
            config["auths"][server] = dict(entry)
    if creds_store is not None:
        config["credsStore"] = creds_store
    if cred_helpers:
        config["credHelpers"] = dict(cred_helpers)
    config.update(extra or {})
    path = directory / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@dataclass
class CredentialHelper:
    """A `docker-credential-<name>` program written by `write_credential_helper`."""

    name: str
    path: Path
    calls_file: Path
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)

    def calls(self) -> list[tuple[str, str]]:
        """(action, what came on stdin) of each time it ran, in order."""
        if not self.calls_file.exists():
            return []
        return [
            (action, server)
            for action, _, server in (
                line.partition("\t") for line in self.calls_file.read_text().splitlines()
            )
        ]


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def write_credential_helper(
    directory: Path, name: str, secrets: Mapping[str, tuple[str, str]]
) -> CredentialHelper:
    """An executable DIRECTORY/docker-credential-NAME speaking Docker's credential-helper
    protocol, for `credsStore: NAME` and `credHelpers: {host: NAME}`: put DIRECTORY first on
    PATH.

    `get` reads a server (exactly as the client sends it: a bare "127.0.0.1:PORT" is what Docker
    sends for such a registry) on stdin and prints {"ServerURL", "Username", "Secret"} for a
    server in `secrets`, else "credentials not found in native keychain" on stdout with exit
    code 1, as the real helpers do. `list` prints {server: user}. Each call is appended to
    `calls_file` so a test can check the helper was (or was not) asked. A shell script, so
    running it costs a millisecond, not a Python start-up."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"docker-credential-{name}"
    calls = directory / f"docker-credential-{name}.calls"
    cases = "".join(
        f"    {_sh_quote(server)}) printf '%s\\n' "
        f"{_sh_quote(json.dumps({'ServerURL': server, 'Username': user, 'Secret': secret}))} ;;\n"
        for server, (user, secret) in secrets.items()
    )
    listing = json.dumps({server: user for server, (user, _) in secrets.items()})
    path.write_text(
        "#!/bin/sh\n"
        f"# docker-credential-{name}: a fake Docker credential helper written by the tests\n"
        'action="$1"\n'
        'server="$(cat)"\n'
        f'printf \'%s\\t%s\\n\' "$action" "$server" >> {_sh_quote(str(calls))}\n'
        'case "$action" in\n'
        "  get)\n"
        '    case "$server" in\n'
        f"{cases}"
        '    *) echo "credentials not found in native keychain"; exit 1 ;;\n'
        "    esac ;;\n"
        f"  list) printf '%s\\n' {_sh_quote(listing)} ;;\n"
        '  *) echo "unsupported action: $action" >&2; exit 1 ;;\n'
        "esac\n"
    )
    path.chmod(0o755)
    return CredentialHelper(name, path, calls, dict(secrets))


# ---------------------------------------------------------------------------------------------
# Fixtures: `from tests.support.registry import oci_registry` (etc.) in a test module, or in a
# conftest.py, makes them available.


def start_registry(factory: pytest.TempPathFactory, mode: Mode) -> Registry:
    """A registry for the session, or the test failed (skipped where it cannot be installed:
    not root, or no apt-get), as the board's Chromium test does."""
    try:
        return Registry(factory.mktemp(f"oci-registry-{mode}"), mode)
    except Unavailable as why:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail(f"{why}: .ci/run installs it")
        pytest.skip(str(why))


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry over plain HTTP, shared by the session (per xdist worker): use
    `new_name()` for repositories, `mark()` before what the test counts."""
    registry = start_registry(tmp_path_factory, "anonymous")
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def oci_registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with htpasswd auth over TLS (`credentials`, `ca_file`, `env()`)."""
    registry = start_registry(tmp_path_factory, "basic")
    yield registry
    registry.stop()


@pytest.fixture(scope="session")
def oci_registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with bearer-token auth over TLS; its token endpoint is `token_server`."""
    registry = start_registry(tmp_path_factory, "token")
    yield registry
    registry.stop()
