"""The reliability suite talks to moto through a fault-injecting proxy."""

from collections.abc import Iterator

import pytest

from tests.conftest import Cli
from tests.support.faults import FaultProxy
from tests.support.moto import MotoServer


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def faulty(cli: Cli, proxy: FaultProxy) -> Cli:
    """The console scripts reach AWS only through the proxy (the test's own clients do not)."""
    cli.env["AWS_ENDPOINT_URL"] = proxy.url
    return cli
