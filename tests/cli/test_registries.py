"""Images in any OCI registry, not only ECR: checked, pinned to their digests and watched, against
a real registry (Debian's docker-registry, tests/support/registry.py) and the AWS server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support import registry as support
from tests.support.registry import Registry, write_credential_helper, write_docker_config

oci_registry = support.oci_registry
oci_registry_basic = support.oci_registry_basic
oci_registry_token = support.oci_registry_token

STAGE_ONLY = (
    '[environments.stage]\npromote_from = "latest"\n\n[environments.prod]\npromote_from = "stage"\n'
)


def using(cli: Cli, registry: Registry, settings: str = "", docker: Path | None = None) -> Cli:
    """The project with `registry` in its config (plain HTTP needs `insecure`), trusting its CA,
    and Docker's credentials from `docker` (none by default)."""
    cli.write_config(STAGE_ONLY)
    if registry.scheme == "http" and "insecure" not in settings:
        settings = "insecure = true\n" + settings
    if settings:
        config = Path(cli.env["TF_RELEASE_CONFIG"])
        config.write_text(config.read_text() + f'\n[registries."{registry.host}"]\n{settings}')
    cli.env.update(registry.env())
    cli.env["DOCKER_CONFIG"] = str(docker or cli.cwd / "no-docker-login")
    return cli


def ssm(cli: Cli, name: str) -> str:
    return cli.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]


def shown(cli: Cli, version: str) -> dict[str, object]:
    return json.loads(cli.ok("show", "-e", "stage", version, "--json"))


def test_publish_checks_that_the_tag_exists(cli: Cli, oci_registry: Registry) -> None:
    using(cli, oci_registry)
    name = oci_registry.new_name()
    oci_registry.push(name, "1.0", "index")
    cli.ok("publish", "api", oci_registry.url(name, "1.0"))
    refused = cli.run("publish", "api", oci_registry.url(name, "1.1"))
    assert refused.returncode == 1
    assert refused.stderr == (
        f"tf-release: error: {oci_registry.url(name, '1.1')} does not exist in "
        f"{oci_registry.host}: push it first (or pass --skip-image-check)\n"
    )
    assert ssm(cli, "/catalogue/image_ids/latest/api") == oci_registry.url(name, "1.0")


@pytest.mark.parametrize("kind", ["index", "manifest", "docker-list", "docker"])
def test_prepare_records_the_digest_the_tag_names_in_one_head(
    cli: Cli, oci_registry: Registry, kind: support.Kind
) -> None:
    using(cli, oci_registry)
    name = oci_registry.new_name()
    digest = oci_registry.push(name, "1.0", kind)
    cli.ok("publish", "api", oci_registry.url(name, "1.0"), "--skip-image-check")
    mark = oci_registry.mark()
    cli.ok("prepare", "-e", "stage", "-r", "first")
    assert oci_registry.calls_since(mark) == [
        ("GET", "/v2/"),
        ("HEAD", f"/v2/{name}/manifests/1.0"),
    ]
    assert shown(cli, "v1")["digests"] == {"api": digest}


def test_deploy_pins_the_digest_and_an_unchanged_image_is_not_asked_again(
    cli: Cli, oci_registry: Registry
) -> None:
    using(cli, oci_registry)
    api, worker = oci_registry.new_name("api"), oci_registry.new_name("worker")
    first = oci_registry.push(api, "1.0", "index")
    oci_registry.push(worker, "1.0", "manifest")
    cli.ok("publish", "api", oci_registry.url(api, "1.0"))
    cli.ok("publish", "worker", oci_registry.url(worker, "1.0"))
    cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    assert ssm(cli, "/catalogue/image_ids/stage/api") == oci_registry.url(api, first)

    newer = oci_registry.push(worker, "1.1", "manifest", build="2")
    cli.ok("publish", "worker", oci_registry.url(worker, "1.1"))
    mark = oci_registry.mark()
    cli.ok("prepare", "-e", "stage", "-r", "worker 1.1")
    heads = [call for call in oci_registry.calls_since(mark) if call[0] == "HEAD"]
    assert heads == [("HEAD", f"/v2/{worker}/manifests/1.1")]  # api stays: none for it
    assert shown(cli, "v2")["digests"] == {"api": first, "worker": newer}


def test_a_rollback_brings_back_the_recorded_digest_after_the_tag_moved(
    cli: Cli, oci_registry: Registry
) -> None:
    using(cli, oci_registry)
    api = oci_registry.new_name("api")
    first = oci_registry.push(api, "stable", "index", build="1")
    cli.ok("publish", "api", oci_registry.url(api, "stable"))
    cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    oci_registry.push(api, "stable", "index", build="2")  # the tag moves to other bits
    oci_registry.push(api, "2.0", "index", build="3")
    cli.ok("publish", "api", oci_registry.url(api, "2.0"))
    cli.ok("apply", "-e", "stage", "-r", "2.0", "--yes")
    cli.ok("rollback", "-e", "stage", "--to", "v1", "-r", "back", "--yes")
    assert ssm(cli, "/catalogue/image_ids/stage/api") == oci_registry.url(api, first)


def test_verify_reports_a_deployed_image_that_no_longer_exists(
    cli: Cli, oci_registry: Registry
) -> None:
    using(cli, oci_registry)
    api = oci_registry.new_name("api")
    digest = oci_registry.push(api, "1.0", "manifest")
    cli.ok("publish", "api", oci_registry.url(api, "1.0"))
    cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    assert cli.run("verify", "-e", "stage").returncode == 0
    oci_registry.delete(api, digest)
    found = cli.run("verify", "-e", "stage", "--json")
    assert found.returncode == 4
    report = json.loads(found.stdout)
    assert "registry" in report["checked"]
    assert report["differences"] == [
        {
            "kind": "registry",
            "subject": "api",
            "detail": f"{oci_registry.url(api, digest)} no longer exists in {oci_registry.host}",
        }
    ]


def test_a_deploy_refuses_an_image_gone_from_its_registry_and_writes_nothing(
    cli: Cli, oci_registry: Registry
) -> None:
    using(cli, oci_registry)
    api = oci_registry.new_name("api")
    digest = oci_registry.push(api, "1.0", "manifest")
    cli.ok("publish", "api", oci_registry.url(api, "1.0"))
    cli.ok("prepare", "-e", "stage", "-r", "first")
    oci_registry.delete(api, digest)
    refused = cli.run("deploy", "-e", "stage", "--yes")
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith(
        f"1 image(s) no longer exist in {oci_registry.host}: {oci_registry.url(api, digest)} "
        "(pass --skip-image-check to deploy anyway)"
    )
    assert json.loads(cli.ok("status", "-e", "stage", "--json"))[0]["version"] is None


def test_basic_credentials_come_from_dockers_config(cli: Cli, oci_registry_basic: Registry) -> None:
    docker = cli.cwd / "docker"
    write_docker_config(docker, auths={oci_registry_basic.host: (support.USER, support.PASSWORD)})
    using(cli, oci_registry_basic, docker=docker)
    api = oci_registry_basic.new_name("api")
    digest = oci_registry_basic.push(api, "1.0", "index")
    cli.ok("publish", "api", oci_registry_basic.url(api, "1.0"))
    cli.ok("prepare", "-e", "stage", "-r", "first")
    assert shown(cli, "v1")["digests"] == {"api": digest}
    doctor = cli.ok("doctor", "--read-only")
    assert (
        f"ok   registry {oci_registry_basic.host}: reachable as {support.USER} "
        f"(from {docker / 'config.json'})"
    ) in doctor


def test_without_credentials_a_registry_that_wants_them_is_one_line_and_nothing_written(
    cli: Cli, oci_registry_basic: Registry
) -> None:
    using(cli, oci_registry_basic)
    api = oci_registry_basic.new_name("api")
    oci_registry_basic.push(api, "1.0", "manifest")
    refused = cli.run("publish", "api", oci_registry_basic.url(api, "1.0"))
    assert refused.returncode == 1
    host = oci_registry_basic.host
    assert refused.stderr == (
        f"tf-release: error: {host} wants credentials for {api}: log in (`docker login {host}`), "
        f'or set check = false under [registries."{host}"] in tf-release.toml\n'
    )
    assert cli.client("ssm").get_parameters_by_path(Path="/catalogue/")["Parameters"] == []


def test_wrong_credentials_are_named_with_where_they_came_from(
    cli: Cli, oci_registry_basic: Registry
) -> None:
    docker = cli.cwd / "docker"
    write_docker_config(docker, auths={oci_registry_basic.host: ("ci", "wrong")})
    using(cli, oci_registry_basic, docker=docker)
    api = oci_registry_basic.new_name("api")
    oci_registry_basic.push(api, "1.0", "manifest")
    refused = cli.run("publish", "api", oci_registry_basic.url(api, "1.0"))
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"tf-release: error: {oci_registry_basic.host} refused ci (from {docker / 'config.json'})"
    )


def test_a_credential_helper_named_by_creds_store_is_asked(
    cli: Cli, oci_registry_basic: Registry
) -> None:
    docker = cli.cwd / "docker"
    write_docker_config(docker, creds_store="vault")
    helper = write_credential_helper(
        cli.cwd / "bin", "vault", {oci_registry_basic.host: (support.USER, support.PASSWORD)}
    )
    using(cli, oci_registry_basic, docker=docker)
    cli.env["PATH"] = f"{cli.cwd / 'bin'}:{cli.env['PATH']}"
    api = oci_registry_basic.new_name("api")
    oci_registry_basic.push(api, "1.0", "manifest")
    cli.ok("publish", "api", oci_registry_basic.url(api, "1.0"))
    assert helper.calls() == [("get", oci_registry_basic.host)]


def test_the_bearer_token_flow_takes_one_token_per_repository(
    cli: Cli, oci_registry_token: Registry
) -> None:
    using(cli, oci_registry_token)
    api, worker = oci_registry_token.new_name("api"), oci_registry_token.new_name("worker")
    digests = {
        "api": oci_registry_token.push(api, "1.0", "index"),
        "worker": oci_registry_token.push(worker, "1.0", "manifest"),
    }
    cli.ok("publish", "api", oci_registry_token.url(api, "1.0"), "--skip-image-check")
    cli.ok("publish", "worker", oci_registry_token.url(worker, "1.0"), "--skip-image-check")
    assert oci_registry_token.token_server is not None
    oci_registry_token.token_server.clear()
    mark = oci_registry_token.mark()
    cli.ok("prepare", "-e", "stage", "-r", "first")
    assert shown(cli, "v1")["digests"] == digests
    scopes = sorted(scope for request in oci_registry_token.token_server.requests
                    for scope in request.scopes)  # fmt: skip
    assert scopes == [f"repository:{api}:pull", f"repository:{worker}:pull"]
    heads = [call for call in oci_registry_token.calls_since(mark) if call[0] == "HEAD"]
    assert len(heads) == 2


def test_a_token_service_that_wants_credentials_gets_dockers(
    cli: Cli, oci_registry_token: Registry
) -> None:
    docker = cli.cwd / "docker"
    write_docker_config(docker, auths={oci_registry_token.host: (support.USER, support.PASSWORD)})
    using(cli, oci_registry_token, docker=docker)
    api = oci_registry_token.new_name("api")
    oci_registry_token.push(api, "1.0", "manifest")
    assert oci_registry_token.token_server is not None
    with oci_registry_token.token_server.credentials_required():
        cli.ok("publish", "api", oci_registry_token.url(api, "1.0"))
        using(cli, oci_registry_token)  # no credentials now
        refused = cli.run("publish", "api", oci_registry_token.url(api, "1.0"))
    assert refused.returncode == 1 and "wants credentials for" in refused.stderr


def test_an_unreachable_registry_is_one_line_and_check_false_is_never_asked(
    cli: Cli, oci_registry: Registry
) -> None:
    gone = "127.0.0.1:9"  # nothing listens there
    cli.write_config(STAGE_ONLY)
    url = f"{gone}/team/api:1.0"
    refused = cli.run("publish", "api", url)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"tf-release: error: cannot reach the registry {gone} (")
    assert refused.stderr.endswith(
        f'set check = false under [registries."{gone}"] in tf-release.toml\n'
    )
    config = Path(cli.env["TF_RELEASE_CONFIG"])
    config.write_text(config.read_text() + f'\n[registries."{gone}"]\ncheck = false\n')
    cli.ok("publish", "api", url)
    cli.ok("apply", "-e", "stage", "-r", "unchecked", "--yes")
    assert shown(cli, "v1").get("digests", {}) == {}
    assert ssm(cli, "/catalogue/image_ids/stage/api") == url  # kept as written


def test_plain_http_is_refused_unless_the_registry_is_insecure(
    cli: Cli, oci_registry: Registry
) -> None:
    using(cli, oci_registry, settings="insecure = false\n")
    api = oci_registry.new_name("api")
    oci_registry.push(api, "1.0", "manifest")
    refused = cli.run("publish", "api", oci_registry.url(api, "1.0"))
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"tf-release: error: cannot reach the registry {oci_registry.host} ("
    )


def test_registry_settings_are_checked_by_the_schema(cli: Cli) -> None:
    cli.write_config(STAGE_ONLY)
    config = Path(cli.env["TF_RELEASE_CONFIG"])
    config.write_text(config.read_text() + '\n[registries."ghcr.io"]\ninsecure = "yes"\n')
    refused = cli.run("check-config")
    assert refused.returncode == 2
    assert "registries.ghcr.io.insecure: 'yes' is not of type 'boolean'" in refused.stderr


class RateLimited:
    """A registry in front of the real one that answers its first `refusals` manifest requests
    429 TOOMANYREQUESTS, as Docker Hub does past its pull limit, and passes the rest through."""

    def __init__(self, registry: Registry, refusals: int) -> None:
        self.registry = registry
        self.refusals = refusals
        self.refused = 0
        limiter = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                if "/manifests/" in self.path and limiter.refused < limiter.refusals:
                    limiter.refused += 1
                    body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"pull limit"}]}'
                    self.send_response(429)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                answer = limiter.registry.request(self.command, self.path, auth=False, headers={
                    key: value for key, value in self.headers.items() if key.lower() == "accept"
                })  # fmt: skip
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    if key not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_HEAD = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("refusals,ok", [(2, True), (5, False)])
def test_a_pull_limit_is_retried_with_backoff_then_one_line(
    cli: Cli, oci_registry: Registry, refusals: int, ok: bool
) -> None:
    api = oci_registry.new_name("api")
    digest = oci_registry.push(api, "1.0", "manifest")
    limited = RateLimited(oci_registry, refusals)
    try:
        cli.write_config(STAGE_ONLY)
        config = Path(cli.env["TF_RELEASE_CONFIG"])
        config.write_text(
            config.read_text() + f'\n[registries."{limited.host}"]\ninsecure = true\n'
        )
        url = f"{limited.host}/{api}:1.0"
        cli.ok("publish", "api", url, "--skip-image-check")
        prepared = cli.run("prepare", "-e", "stage", "-r", "limited")
    finally:
        limited.close()
    if ok:
        assert prepared.returncode == 0, prepared.stderr
        assert shown(cli, "v1")["digests"] == {"api": digest}
    else:
        assert prepared.returncode == 1
        assert prepared.stderr == (
            f"tf-release: error: {limited.host} kept answering 429 Too Many Requests (a pull "
            f"rate limit) to 5 tries: wait and run it again, or log in (`docker login "
            f"{limited.host}`) for a higher limit\n"
        )
        assert cli.run("show", "-e", "stage", "v1").returncode == 2  # no manifest written
    assert limited.refused == refusals


def test_a_certificate_nobody_trusts_is_named_as_such(
    cli: Cli, oci_registry_basic: Registry
) -> None:
    using(cli, oci_registry_basic)
    del cli.env["SSL_CERT_FILE"]  # the registry's CA is a stranger now
    refused = cli.run("publish", "api", oci_registry_basic.url("team/api", "1.0"))
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"tf-release: error: the certificate of the registry {oci_registry_basic.host} is not "
        "trusted ("
    )
    assert refused.stderr.endswith("name its bundle in SSL_CERT_FILE\n")
