"""Registry credentials are found where `docker login` (or podman, skopeo) left them."""

import base64
import http.client
import json
import urllib.request
from pathlib import Path

import pytest

from tests.support.registry import write_credential_helper, write_docker_config
from tf_release.model.errors import RegistryFailure
from tf_release.model.naming import parse_reference
from tf_release.stores.registry import DockerCredentials, Login, _SameHostAuthorization

HOST = "registry.internal:5000"


def found(files: list[Path], host: str = HOST) -> tuple[str, str] | None:
    login = DockerCredentials(files).login(host)
    return None if login is None else (login.user, login.secret)


def test_an_auths_entry_is_base64_of_user_and_secret(tmp_path: Path) -> None:
    config = write_docker_config(tmp_path, auths={HOST: ("ci", "s3cret")})
    assert found([config]) == ("ci", "s3cret")
    assert found([config], "ghcr.io") is None


def test_an_auths_key_with_a_scheme_names_the_same_registry(tmp_path: Path) -> None:
    config = write_docker_config(tmp_path, auths={f"https://{HOST}/v1/": ("ci", "s3cret")})
    assert found([config]) == ("ci", "s3cret")


def test_docker_hub_is_keyed_as_docker_login_keys_it(tmp_path: Path) -> None:
    config = write_docker_config(tmp_path, auths={"https://index.docker.io/v1/": ("me", "pat")})
    assert found([config], "docker.io") == ("me", "pat")


def test_a_cred_helper_for_the_registry_wins_over_its_auths_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper = write_credential_helper(tmp_path / "bin", "pass", {HOST: ("helper", "h")})
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    config = write_docker_config(
        tmp_path, auths={HOST: ("inline", "i")}, cred_helpers={HOST: "pass"}
    )
    assert found([config]) == ("helper", "h")
    assert helper.calls() == [("get", HOST)]


def test_a_creds_store_that_does_not_know_the_registry_leaves_the_inline_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_credential_helper(tmp_path / "bin", "desktop", {})
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    config = write_docker_config(tmp_path, auths={HOST: ("inline", "i")}, creds_store="desktop")
    assert found([config]) == ("inline", "i")
    assert found([config], "ghcr.io") is None


def test_a_helper_that_is_not_installed_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    config = write_docker_config(tmp_path, creds_store="osxkeychain")
    with pytest.raises(RegistryFailure, match="docker-credential-osxkeychain is not on PATH"):
        found([config])


def test_registry_auth_file_is_read_before_dockers_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    podman = tmp_path / "auth.json"
    podman.write_text(json.dumps(
        {"auths": {HOST: {"auth": base64.b64encode(b"podman:p").decode()}}}
    ))  # fmt: skip
    docker = write_docker_config(tmp_path / "docker", auths={HOST: ("docker", "d")})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(podman))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker.parent))
    login = DockerCredentials.from_environment().login(HOST)
    assert login == Login("podman", "p", str(podman))


def test_a_config_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json")
    with pytest.raises(RegistryFailure, match="cannot read registry credentials from"):
        found([config])


@pytest.mark.parametrize(
    "url,host,repository,reference",
    [
        ("docker.io/nginx:1.27", "docker.io", "library/nginx", "1.27"),
        ("docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7"),
        ("ghcr.io/acme/api@sha256:" + "a" * 64, "ghcr.io", "acme/api", "sha256:" + "a" * 64),
        ("127.0.0.1:5000/team/api:1.0", "127.0.0.1:5000", "team/api", "1.0"),
    ],
)
def test_an_image_url_names_its_registry_repository_and_reference(
    url: str, host: str, repository: str, reference: str
) -> None:
    image = parse_reference(url)
    assert (image.host, image.repository, image.reference) == (host, repository, reference)


@pytest.mark.parametrize(
    "url,host,repository",
    [
        ("acme/api:1.0", "docker.io", "acme/api"),  # Docker's short form: a Hub namespace
        ("index.docker.io/acme/api:1.0", "docker.io", "acme/api"),
        ("registry-1.docker.io/nginx:1", "docker.io", "library/nginx"),
        ("localhost/api:1", "localhost", "api"),
        ("localhost:5000/team/api:1", "localhost:5000", "team/api"),
    ],
)
def test_a_first_part_that_is_not_a_host_is_docker_hub_as_docker_reads_it(
    url: str, host: str, repository: str
) -> None:
    image = parse_reference(url)
    assert (image.host, image.repository) == (host, repository)


@pytest.mark.parametrize(
    "target,kept",
    [("https://cdn.example.net/blob", False), ("https://registry.internal:5000/v2/x", True)],
)
def test_a_redirect_keeps_the_login_only_on_the_same_host(target: str, kept: bool) -> None:
    asked = urllib.request.Request(
        "https://registry.internal:5000/v2/team/api/manifests/1.0",
        headers={"Authorization": "Basic c2VjcmV0", "Accept": "x"},
    )
    followed = _SameHostAuthorization().redirect_request(
        asked, None, 307, "Temporary Redirect", http.client.HTTPMessage(), target
    )
    assert followed is not None
    assert followed.has_header("Authorization") is kept


def test_a_login_never_prints_its_secret() -> None:
    assert "s3cret" not in repr(Login("ci", "s3cret", "config.json"))
