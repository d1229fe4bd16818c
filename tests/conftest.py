"""Shared fixtures: dummy AWS credentials, in-process moto, an AWS server, a project config.

The AWS server the command-line and end-to-end tests talk to is a moto server, or with
TF_RELEASE_TEST_AWS=ministack a ministack server (tests/support/ministack.py; `ci/ministack` runs
the tests marked `second_aws` that way). Tests that need something only moto has are marked
`moto_only` and skipped on the other.
"""

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest
from moto import mock_aws

from tests.support.ministack import MinistackServer
from tests.support.moto import MotoServer
from tests.support.project import BUCKET, CONFIG, PROJECT, REGION, ROOT, UNCHECKED
from tests.support.terraform import unlock_stand_in, write_cli_config
from tf_release.model.config import Config, load_config
from tf_release.stores.bundle import Stores, open_stores

BIN = Path(sys.executable).parent

AWS_VARIABLE = "TF_RELEASE_TEST_AWS"
SERVERS = {"moto": MotoServer, "ministack": MinistackServer}


class AwsServer(Protocol):
    """What the tests use of the AWS server: `MotoServer` or `MinistackServer`."""

    kind: str  # "moto" or "ministack"
    url: str

    @property
    def pid(self) -> int: ...

    def reset(self) -> None: ...

    def stop(self) -> None: ...


def aws_implementation() -> str:
    """The AWS server the session runs: TF_RELEASE_TEST_AWS, moto unless it says otherwise."""
    kind = os.environ.get(AWS_VARIABLE) or "moto"
    if kind not in SERVERS:
        raise pytest.UsageError(f"{AWS_VARIABLE}={kind}: expected one of {', '.join(SERVERS)}")
    return kind


def pytest_configure(config: pytest.Config) -> None:
    """Console scripts the tests start must hear Ctrl-C as from a terminal. A suite started in
    the background by a shell without job control (a CI script's `&`) has SIGINT ignored, and
    its children would inherit that and never see the tests' SIGINT."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    aws_implementation()  # a misspelt TF_RELEASE_TEST_AWS stops the run before any test
    config.addinivalue_line(
        "markers",
        "moto_only(reason): needs something only moto's server has (/moto-api/...); skipped "
        "when TF_RELEASE_TEST_AWS names another AWS implementation",
    )
    config.addinivalue_line(
        "markers",
        "second_aws: in the subset ci/ministack runs against ministack (one pytest worker)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kind = aws_implementation()
    if kind == "moto":
        return
    for item in items:
        marker = item.get_closest_marker("moto_only")
        if marker is not None:
            why = marker.args[0] if marker.args else marker.kwargs.get("reason")
            reason = f"moto only, not {kind}" + (f": {why}" if why else "")
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials only: nothing a test does can reach a real AWS account."""
    for name in list(os.environ):
        if name.startswith("AWS_") or (
            name.startswith("TF_RELEASE_") and not name.startswith("TF_RELEASE_TEST_")
        ):
            monkeypatch.delenv(name)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)  # run in Actions: not its page
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "tf-release.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path)


@pytest.fixture
def stores(config: Config) -> Iterator[Stores]:
    """The project's stores over in-process moto, with the bucket created."""
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield open_stores(config)


@pytest.fixture(scope="session")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsServer]:
    """The session's AWS server on 127.0.0.1 (moto, or what TF_RELEASE_TEST_AWS names), shared by
    every test in this worker: a test resets it before use (the `cli` fixture does)."""
    kind = aws_implementation()
    server: AwsServer = SERVERS[kind](tmp_path_factory.mktemp(kind) / f"{kind}.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server(aws_server: AwsServer) -> AwsServer:
    """The older name of `aws_server`: moto unless TF_RELEASE_TEST_AWS says otherwise."""
    return aws_server


@dataclass
class Cli:
    """Runs the installed console scripts as a user would, against the AWS server."""

    env: dict[str, str]
    cwd: Path
    server: AwsServer

    def run(
        self, *args: str, input: str | None = None, script: str = "tf-release"
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / script), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            input=input,
            timeout=120,
        )

    def start(self, *args: str, **streams: Any) -> subprocess.Popen[str]:
        """The console script running in the background (stdout and stderr piped by default)."""
        return subprocess.Popen(
            [str(BIN / "tf-release"), *args],
            env=self.env,
            cwd=self.cwd,
            text=True,
            **{"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **streams},
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def client(self, service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=self.server.url)

    def caller(self) -> str:
        """The ARN the AWS server gives this runner's credentials (what a lock names as its
        holder): moto and ministack each have their own account and user."""
        sts = boto3.client(
            "sts",
            region_name=REGION,
            endpoint_url=self.server.url,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )
        return str(sts.get_caller_identity()["Arn"])

    def write_config(self, environments: str) -> None:
        """Replace the project's environments (the project, bucket and region stay)."""
        path = Path(self.env["TF_RELEASE_CONFIG"])
        path.write_text(
            f'project = "{PROJECT}"\nbucket = "{BUCKET}"\nregion = "{REGION}"\n\n{environments}'
            + UNCHECKED
        )

    def copy_fixture(self, name: str) -> Path:
        """A Terraform root module from tests/fixtures, copied into the project folder."""
        target = self.cwd / name
        shutil.copytree(ROOT / "tests" / "fixtures" / name, target)
        return target

    def stores(self) -> Stores:
        """The same project in-process, to set a scene faster than the console script can."""
        return open_stores(load_config(Path(self.env["TF_RELEASE_CONFIG"])))


@pytest.fixture
def cli(
    aws_server: AwsServer,
    config_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    """A fresh AWS server state, the release bucket, and a project folder with its config."""
    aws_server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_server.url)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": aws_server.url,
        "TF_RELEASE_CONFIG": str(config_path),
        "NO_COLOR": "1",
    }
    runner = Cli(env=env, cwd=tmp_path, server=aws_server)
    runner.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return runner


@pytest.fixture(scope="session")
def terraform_cli_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cli_config(tmp_path_factory.mktemp("terraform"))


@pytest.fixture(scope="session")
def cli_config_without_external(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A machine whose Terraform can install the aws provider but not `hashicorp/external`."""
    return write_cli_config(tmp_path_factory.mktemp("terraform"), external=False)


@pytest.fixture
def tf_cli(cli: Cli, terraform_cli_config: Path, tmp_path: Path) -> Cli:
    """The CLI runner with real Terraform configured, and the repository's terraform/ copied into
    the project folder (Terraform writes lock files and state beside a module)."""
    if shutil.which("terraform") is None:
        pytest.skip("no terraform on PATH")
    shutil.copytree(ROOT / "terraform", tmp_path / "terraform")
    unlock_stand_in(tmp_path / "terraform")  # the committed lock files name the real external
    cli.env.update(
        TF_CLI_CONFIG_FILE=str(terraform_cli_config),
        PATH=f"{BIN}{os.pathsep}{cli.env['PATH']}",  # tf-release-manifest, for data "external"
        TF_IN_AUTOMATION="1",
    )
    return cli
