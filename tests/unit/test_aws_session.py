"""The session factory under the thread pools that use it (ECR lookups run on eight threads)."""

import threading
import time
from typing import Any

import pytest

from tf_release.stores.aws import AwsSession


def test_threads_asking_for_a_client_at_once_share_one(monkeypatch: pytest.MonkeyPatch) -> None:
    session = AwsSession(region="eu-west-1")
    made = session._session.client  # the boto3 session's own factory
    built: list[Any] = []

    def slow_client(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)  # as a first client is, loading its service model
        client = made(*args, **kwargs)
        built.append(client)
        return client

    monkeypatch.setattr(session._session, "client", slow_client)
    start = threading.Barrier(8)
    got: list[Any] = []

    def ask() -> None:
        start.wait()
        got.append(session.client("ecr"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert len({id(client) for client in got}) == 1
