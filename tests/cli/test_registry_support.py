"""tests/support/registry.py works: the registries start, pushed images are what a second client
(skopeo) sees, the request log counts exactly, and the three auth modes, the token endpoint,
Docker's config.json and a credential helper behave as real ones do.

The HEAD table below is also the record of how distribution 2.8 answers a manifest HEAD for
each Accept header: it matters to tf-release's client (issue #25)."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support import registry as support
from tests.support.registry import (
    ACCEPT_ALL,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    PASSWORD,
    SERVICE,
    USER,
    Registry,
    TokenRequest,
    write_credential_helper,
    write_docker_config,
)

# The fixtures, as a test module that uses them takes them in (an import would be reported as
# unused and then redefined by the test's argument).
oci_registry = support.oci_registry
oci_registry_basic = support.oci_registry_basic
oci_registry_token = support.oci_registry_token

KINDS = ("manifest", "docker", "index", "docker-list")
MEDIA_TYPES = {
    "manifest": OCI_MANIFEST,
    "docker": DOCKER_MANIFEST,
    "index": OCI_INDEX,
    "docker-list": DOCKER_LIST,
}


def skopeo(
    *args: str, registry: Registry, tmp_path: Path, env: dict[str, str] | None = None
) -> str:
    """skopeo's stdout (it must succeed), trusting the registry's CA where it has one."""
    if shutil.which("skopeo") is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            pytest.fail(f"skopeo is not installed: {support.APT_LINE}")
        pytest.skip("skopeo is not installed")
    tls = ["--tls-verify=false"]
    if registry.ca_file is not None:
        certs = tmp_path / "certs"
        certs.mkdir(exist_ok=True)
        shutil.copy(registry.ca_file, certs / "ca.crt")
        tls = ["--cert-dir", str(certs)]
    command, *rest = args
    done = subprocess.run(
        ["skopeo", command, *tls, *rest],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(tmp_path), **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_the_registry_is_on_loopback(oci_registry: Registry) -> None:
    host, _, port = oci_registry.host.partition(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert oci_registry.url("team/app", "1.2") == f"127.0.0.1:{port}/team/app:1.2"
    assert oci_registry.url("app", "sha256:ab") == f"127.0.0.1:{port}/app@sha256:ab"
    assert oci_registry.credentials is None and oci_registry.ca_file is None


@pytest.mark.parametrize("kind", KINDS)
def test_pushed_digests_are_what_skopeo_sees(
    oci_registry: Registry, kind: str, tmp_path: Path
) -> None:
    name = oci_registry.new_name()
    digest = oci_registry.push(name, "v1", kind)  # type: ignore[arg-type]
    image = f"docker://{oci_registry.url(name, 'v1')}"
    raw = skopeo("inspect", "--raw", "--no-creds", image, registry=oci_registry, tmp_path=tmp_path)
    assert digest_of(raw.encode()) == digest
    assert json.loads(raw)["mediaType"] == MEDIA_TYPES[kind]
    inspected = skopeo(
        "inspect",
        "--no-creds",
        "--format",
        "{{.Digest}}",
        image,
        registry=oci_registry,
        tmp_path=tmp_path,
    )
    assert inspected.strip() == digest  # for a list too: the list's digest, not a platform's
    answer = oci_registry.head(name, "v1")
    assert (answer.status, answer.headers["docker-content-digest"]) == (200, digest)
    assert answer.headers["content-type"] == MEDIA_TYPES[kind]


# How distribution 2.8 answers `HEAD /v2/<name>/manifests/<tag>` for each Accept header
# ("pushed": 200 with the pushed manifest's Docker-Content-Digest; "amd64": 200 with the digest
# of the list's linux/amd64 manifest instead; 404 MANIFEST_UNKNOWN "OCI manifest/index found,
# but accept header does not support OCI manifests/indexes"; 400 MANIFEST_INVALID: the
# registry tried to rewrite a Docker manifest to schema 1 for a client that did not say it
# takes schema 2, and cannot). No Accept and `*/*` are the same: the registry matches media
# types exactly. So a client must name all four types, or it gets 404 for an OCI image that
# exists, 400 for a Docker one, or the wrong digest for a Docker list. A HEAD by digest
# answers the stored manifest for Docker types whatever the Accept, but still 404s an OCI one
# whose type is not accepted.
HEAD_TABLE = {
    # accept:            manifest  docker    index     docker-list
    "none": (404, 400, 404, 400),
    "*/*": (404, 400, 404, 400),
    OCI_MANIFEST: ("pushed", 400, 404, 400),
    OCI_INDEX: (404, 400, "pushed", 400),
    DOCKER_MANIFEST: (404, "pushed", 404, "amd64"),
    DOCKER_LIST: (404, 400, 404, "pushed"),
    f"{OCI_MANIFEST}, {OCI_INDEX}": ("pushed", 400, "pushed", 400),
    f"{DOCKER_MANIFEST}, {DOCKER_LIST}": (404, "pushed", 404, "pushed"),
    ACCEPT_ALL: ("pushed", "pushed", "pushed", "pushed"),
}


@pytest.fixture(scope="module")
def pushed_kinds(oci_registry: Registry) -> tuple[str, dict[str, str]]:
    """One repository with a tag per kind (the tag is the kind): its name, and the digests
    (and under "amd64", that of the Docker list's linux/amd64 manifest)."""
    name = oci_registry.new_name("kinds")
    digests = {kind: oci_registry.push(name, kind, kind) for kind in KINDS}  # type: ignore[arg-type]
    digests["amd64"] = oci_registry.push(name, "amd64-alone", "docker")  # the same manifest
    return name, digests


@pytest.mark.parametrize("accept", list(HEAD_TABLE))
def test_head_accept_headers(
    oci_registry: Registry, pushed_kinds: tuple[str, dict[str, str]], accept: str
) -> None:
    name, digests = pushed_kinds
    for kind, expected in zip(KINDS, HEAD_TABLE[accept], strict=True):
        answer = oci_registry.head(name, kind, None if accept == "none" else accept)
        if isinstance(expected, int):
            assert answer.status == expected, (kind, answer)
            assert "docker-content-digest" not in answer.headers
        else:
            want = digests[kind] if expected == "pushed" else digests["amd64"]
            assert (answer.status, answer.headers["docker-content-digest"]) == (200, want), kind


def test_head_by_digest(oci_registry: Registry, pushed_kinds: tuple[str, dict[str, str]]) -> None:
    name, digests = pushed_kinds
    assert oci_registry.head(name, digests["docker-list"], None).status == 200
    assert oci_registry.head(name, digests["docker"], None).status == 200
    assert oci_registry.head(name, digests["index"], None).status == 404
    assert oci_registry.head(name, digests["index"], OCI_INDEX).status == 200


def test_builds_move_tags_and_delete_removes_them(oci_registry: Registry) -> None:
    name = oci_registry.new_name()
    first = oci_registry.push(name, "latest", "index", build="1")
    assert oci_registry.push(name, "latest", "index", build="1") == first  # same content
    assert oci_registry.push(name, "v1", "index", build="1") == first  # another tag
    second = oci_registry.push(name, "latest", "index", build="2")
    assert second != first
    assert oci_registry.head(name, "latest").headers["docker-content-digest"] == second
    assert oci_registry.head(name, "v1").headers["docker-content-digest"] == first
    # Another repository's build 1 is another image.
    assert oci_registry.push(oci_registry.new_name(), "latest", "index", build="1") != first
    oci_registry.delete(name, second)
    assert oci_registry.head(name, "latest").status == 404
    assert oci_registry.head(name, second).status == 404
    assert oci_registry.head(name, "v1").status == 200


def test_the_request_log_counts_exactly(oci_registry: Registry) -> None:
    name = oci_registry.new_name()
    oci_registry.push(name, "v1")
    mark = oci_registry.mark()
    assert oci_registry.calls_since(mark) == []
    oci_registry.head(name, "v1")
    oci_registry.head(name, "missing")
    # A GET whose answer is larger than the registry's write buffer: its log line can come
    # after the client has the answer, and must be there all the same.
    layer = json.loads(
        oci_registry.request(
            "GET", f"/v2/{name}/manifests/v1", headers={"Accept": OCI_MANIFEST}
        ).body
    )["config"]
    oci_registry.request("GET", f"/v2/{name}/blobs/{layer['digest']}")
    requests = oci_registry.requests_since(mark)
    assert [(r.method, r.path, r.status) for r in requests] == [
        ("HEAD", f"/v2/{name}/manifests/v1", 200),
        ("HEAD", f"/v2/{name}/manifests/missing", 404),
        ("GET", f"/v2/{name}/manifests/v1", 200),
        ("GET", f"/v2/{name}/blobs/{layer['digest']}", 200),
    ]
    later = oci_registry.mark()
    oci_registry.head(name, "v1")
    assert oci_registry.calls_since(later) == [("HEAD", f"/v2/{name}/manifests/v1")]


def test_basic_auth_over_tls(oci_registry_basic: Registry, tmp_path: Path) -> None:
    registry = oci_registry_basic
    assert registry.credentials == (USER, PASSWORD) and registry.ca_file is not None
    name = registry.new_name()
    digest = registry.push(name, "v1", "index")
    refused = registry.head(name, "v1", auth=False)
    assert refused.status == 401
    assert refused.headers["www-authenticate"] == 'Basic realm="tf-release-test"'
    wrong = "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode()
    answer = registry.request(
        "HEAD", f"/v2/{name}/manifests/v1", headers={"Accept": ACCEPT_ALL, "Authorization": wrong}
    )
    assert answer.status == 401
    # A client process trusts the CA through SSL_CERT_FILE, with Python's default context.
    script = (
        "import sys, urllib.request\n"
        "headers = {'Accept': sys.argv[2], 'Authorization': sys.argv[3]}\n"
        "request = urllib.request.Request(sys.argv[1], method='HEAD', headers=headers)\n"
        "print(urllib.request.urlopen(request).headers['Docker-Content-Digest'])\n"
    )
    right = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    url = f"{registry.base_url}/v2/{name}/manifests/v1"
    done = subprocess.run(
        [sys.executable, "-c", script, url, ACCEPT_ALL, right],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **registry.env()},
    )
    assert done.stdout.strip() == digest, done.stderr
    # ... and only through it: without, the same request fails on the certificate.
    done = subprocess.run(
        [sys.executable, "-c", script, url, ACCEPT_ALL, right],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"},
    )
    assert done.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in done.stderr
    raw = skopeo(
        "inspect",
        "--raw",
        "--creds",
        f"{USER}:{PASSWORD}",
        f"docker://{registry.url(name, 'v1')}",
        registry=registry,
        tmp_path=tmp_path,
    )
    assert digest_of(raw.encode()) == digest


def test_the_bearer_flow_by_hand(oci_registry_token: Registry) -> None:
    registry = oci_registry_token
    tokens = registry.token_server
    assert tokens is not None and registry.ca_file is not None
    tokens.reset()
    name = registry.new_name("team/app")
    digest = registry.push(name, "v1", "docker-list")
    assert tokens.requests == []  # pushing mints its own tokens
    challenge = registry.head(name, "v1", auth=False)
    assert challenge.status == 401
    assert challenge.headers["www-authenticate"] == (
        f'Bearer realm="{tokens.realm}",service="{SERVICE}",scope="repository:{name}:pull"'
    )
    base = registry.request("GET", "/v2/", auth=False)
    assert base.headers["www-authenticate"] == f'Bearer realm="{tokens.realm}",service="{SERVICE}"'

    context = registry.tls.client_context() if registry.tls else None
    query = urllib.parse.urlencode({"service": SERVICE, "scope": f"repository:{name}:pull"})

    def token(authorization: str | None = None) -> str:
        request = urllib.request.Request(f"{tokens.realm}?{query}")
        if authorization:
            request.add_header("Authorization", authorization)
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["token"] == body["access_token"] and body["expires_in"] == 300
        return str(body["token"])

    def head(bearer: str) -> tuple[int, str | None]:
        answer = registry.request(
            "HEAD",
            f"/v2/{name}/manifests/v1",
            headers={"Accept": ACCEPT_ALL, "Authorization": f"Bearer {bearer}"},
            auth=False,
        )
        return answer.status, answer.headers.get("docker-content-digest")

    assert head(token()) == (200, digest)
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with tokens.credentials_required():
        with pytest.raises(urllib.error.HTTPError) as refused:
            token()
        assert refused.value.code == 401
        assert head(token(basic)) == (200, digest)
    with pytest.raises(urllib.error.HTTPError) as wrong:
        token("Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode())
    assert wrong.value.code == 401
    scope = (f"repository:{name}:pull",)
    assert tokens.requests == [
        TokenRequest(SERVICE, scope, None, 200),
        TokenRequest(SERVICE, scope, None, 401),
        TokenRequest(SERVICE, scope, USER, 200),
        TokenRequest(SERVICE, scope, USER, 401),
    ]


def test_tokens_the_registry_takes_and_refuses(oci_registry_token: Registry) -> None:
    registry = oci_registry_token
    signer = registry.signer
    assert signer is not None
    name = registry.new_name()
    registry.push(name, "v1")

    def head(bearer: str) -> tuple[int, str | None]:
        answer = registry.request(
            "HEAD",
            f"/v2/{name}/manifests/v1",
            headers={"Accept": ACCEPT_ALL, "Authorization": f"Bearer {bearer}"},
            auth=False,
        )
        return answer.status, answer.headers.get("www-authenticate")

    pull = [{"type": "repository", "name": name, "actions": ["pull"]}]
    for header in ("x5c", "kid", "both"):  # distribution 2.8 takes a key named either way
        assert head(signer.sign(pull, header=header))[0] == 200, header
    status, challenge = head(signer.sign([{**pull[0], "name": "other"}]))
    assert status == 401 and challenge is not None and 'error="insufficient_scope"' in challenge
    status, challenge = head(signer.sign(pull, lifetime=-60))
    assert status == 401 and challenge is not None and 'error="invalid_token"' in challenge
    status, _ = head(signer.sign(pull, audience="another-registry"))
    assert status == 401


def test_skopeo_does_the_bearer_flow(oci_registry_token: Registry, tmp_path: Path) -> None:
    registry = oci_registry_token
    tokens = registry.token_server
    assert tokens is not None
    name = registry.new_name()
    digest = registry.push(name, "v1", "index")
    tokens.reset()
    image = f"docker://{registry.url(name, 'v1')}"
    raw = skopeo("inspect", "--raw", "--no-creds", image, registry=registry, tmp_path=tmp_path)
    assert digest_of(raw.encode()) == digest
    with tokens.credentials_required():
        raw = skopeo(
            "inspect",
            "--raw",
            "--creds",
            f"{USER}:{PASSWORD}",
            image,
            registry=registry,
            tmp_path=tmp_path,
        )
    assert digest_of(raw.encode()) == digest
    assert [(r.user, r.scopes, r.status) for r in tokens.requests] == [
        (None, (f"repository:{name}:pull",), 200),
        (USER, (f"repository:{name}:pull",), 200),
    ]


def test_the_credential_helper_speaks_dockers_protocol(tmp_path: Path) -> None:
    helper = write_credential_helper(
        tmp_path / "bin", "fake", {"127.0.0.1:5000": ("someone", 'it\'s "secret"')}
    )

    def run(action: str, stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(helper.path), action], input=stdin, capture_output=True, text=True, timeout=10
        )

    found = run("get", "127.0.0.1:5000\n")
    assert found.returncode == 0
    assert json.loads(found.stdout) == {
        "ServerURL": "127.0.0.1:5000",
        "Username": "someone",
        "Secret": 'it\'s "secret"',
    }
    missing = run("get", "127.0.0.1:5001")
    assert missing.returncode == 1
    assert missing.stdout.strip() == "credentials not found in native keychain"
    assert json.loads(run("list", "").stdout) == {"127.0.0.1:5000": "someone"}
    assert helper.calls() == [("get", "127.0.0.1:5000"), ("get", "127.0.0.1:5001"), ("list", "")]


def test_docker_config_and_helpers_work_for_a_real_client(
    oci_registry_basic: Registry, tmp_path: Path
) -> None:
    """skopeo reads Docker's config.json format (auths, credHelpers): what the helpers write
    is what a real client takes."""
    registry = oci_registry_basic
    name = registry.new_name()
    digest = registry.push(name, "v1")
    image = f"docker://{registry.url(name, 'v1')}"
    config = write_docker_config(tmp_path / "auths", auths={registry.host: (USER, PASSWORD)})
    assert json.loads(config.read_text()) == {
        "auths": {registry.host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}
    }
    raw = skopeo(
        "inspect", "--raw", "--authfile", str(config), image, registry=registry, tmp_path=tmp_path
    )
    assert digest_of(raw.encode()) == digest

    helper = write_credential_helper(tmp_path / "bin", "fake", {registry.host: (USER, PASSWORD)})
    config = write_docker_config(tmp_path / "helpers", cred_helpers={registry.host: "fake"})
    path = f"{helper.path.parent}{os.pathsep}{os.environ['PATH']}"
    raw = skopeo(
        "inspect",
        "--raw",
        "--authfile",
        str(config),
        image,
        registry=registry,
        tmp_path=tmp_path,
        env={"PATH": path},
    )
    assert digest_of(raw.encode()) == digest
    assert helper.calls() == [("get", registry.host)]
