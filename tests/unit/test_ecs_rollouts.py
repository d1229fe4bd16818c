"""The ECS rollout check (issue #12 §3): a deploy succeeded only when each service has finished
rolling out and runs the release's images. In-process moto for what moto's ECS can show; the
fault proxy in front of the moto server rewrites DescribeServices for what it cannot (a FAILED
rollout, a circuit-breaker rollback)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from tests.support.faults import FaultProxy, Request, Rule
from tests.support.moto import MotoServer
from tests.support.project import REGION, image
from tf_release.flows.gates import Check, check_rollouts
from tf_release.model.errors import AwsFailure, GateFailed
from tf_release.model.progress import Quiet
from tf_release.stores.aws import AwsSession
from tf_release.stores.bundle import Stores
from tf_release.stores.ecs import EcsServices

RELEASE = {"api": image("api", "two"), "worker": image("worker", "two")}


class FakeTime:
    """A clock that moves only when the check sleeps: no test waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Announced(Quiet):
    def __init__(self) -> None:
        self.steps: list[str] = []

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        self.steps.append(message)
        yield


def task_definition(ecs: Any, family: str, containers: dict[str, str]) -> str:
    definitions = [{"name": name, "image": url, "memory": 128} for name, url in containers.items()]
    answer = ecs.register_task_definition(family=family, containerDefinitions=definitions)
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def service(ecs: Any, name: str, arn: str, cluster: str = "main", desired: int = 1) -> str:
    """A service on `arn`; moto marks its deployment COMPLETED when MOTO_ECS_SERVICE_RUNNING (read
    here, at creation) is at least `desired`, IN_PROGRESS for ever otherwise."""
    ecs.create_cluster(clusterName=cluster)
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=arn, desiredCount=desired)
    return f"{cluster}/{name}"


def check(
    session: AwsSession | None, services: list[str], time: FakeTime | None = None, **kwargs: Any
) -> list[Check]:
    assert session is not None
    time = time or FakeTime()
    options: dict[str, Any] = {"timeout": 900, "progress": Quiet(), **kwargs}
    return check_rollouts(
        EcsServices(session), services, RELEASE, sleep=time.sleep, clock=time.clock, **options
    )


@pytest.fixture
def ecs(stores: Stores, monkeypatch: pytest.MonkeyPatch) -> Any:
    """ECS in the stores' in-process moto; services created here finish rolling out."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")
    return boto3.client("ecs", region_name=REGION)


def test_a_completed_rollout_of_the_release_images_passes(stores: Stores, ecs: Any) -> None:
    api = service(ecs, "api", task_definition(ecs, "api", {"api": RELEASE["api"]}))
    time = FakeTime()
    [passed] = check(stores.session, [api], time)
    assert passed == Check("ecs main/api", True, 0.0, f"runs api:1 (api={RELEASE['api']})")
    assert time.sleeps == []


def test_containers_the_release_does_not_name_are_not_compared(stores: Stores, ecs: Any) -> None:
    containers = {"api": RELEASE["api"], "envoy": "public.ecr.aws/envoy:v1.29"}
    api = service(ecs, "api", task_definition(ecs, "api", containers))
    [passed] = check(stores.session, [api])
    assert passed.ok


def test_a_service_running_other_images_fails_naming_it_and_what_it_runs(
    stores: Stores, ecs: Any
) -> None:
    worker = service(ecs, "worker", task_definition(ecs, "worker", {"worker": RELEASE["worker"]}))
    api = service(ecs, "api", task_definition(ecs, "api", {"api": image("api", "one")}))
    with pytest.raises(GateFailed) as raised:
        check(stores.session, [worker, api])
    assert str(raised.value) == (
        f"ECS rollout failed: main/api: container api has {image('api', 'one')}, not "
        f"{RELEASE['api']}; runs api:1 (api={image('api', 'one')})"
    )
    assert raised.value.exit_code == 1 and raised.value.phase == "ecs"
    assert [(c.name, c.ok) for c in raised.value.checks] == [
        ("ecs main/worker", True),
        ("ecs main/api", False),
    ]


def test_a_service_with_no_container_named_for_a_release_image_fails(
    stores: Stores, ecs: Any
) -> None:
    app = service(ecs, "app", task_definition(ecs, "app", {"app": RELEASE["api"]}))
    with pytest.raises(GateFailed, match=r"main/app: none of its containers \(app\) is named"):
        check(stores.session, [app])


def test_a_service_that_never_settles_fails_after_the_timeout(
    stores: Stores, ecs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = service(ecs, "worker", task_definition(ecs, "worker", {"worker": RELEASE["worker"]}))
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    stuck = service(ecs, "api", task_definition(ecs, "api", {"api": RELEASE["api"]}))
    time = FakeTime()
    with pytest.raises(GateFailed) as raised:
        check(stores.session, [done, stuck], time, timeout=60)
    assert str(raised.value) == (
        "ECS services did not finish rolling out within 60 s: "
        "main/api (IN_PROGRESS, 0/1 tasks running)"
    )
    assert sum(time.sleeps) == 60
    assert [(c.name, c.ok, c.seconds) for c in raised.value.checks] == [
        ("ecs main/worker", True, 0.0),
        ("ecs main/api", False, 60.0),
    ]


def test_polls_back_off_from_two_to_fifteen_seconds_and_stop_at_the_deadline(
    stores: Stores, ecs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    stuck = service(ecs, "api", task_definition(ecs, "api", {"api": RELEASE["api"]}))
    time = FakeTime()
    with pytest.raises(GateFailed):
        check(stores.session, [stuck], time, timeout=100)
    assert time.sleeps == [2, 4, 8, 15, 15, 15, 15, 15, 11]


def test_the_wait_is_announced_as_a_progress_step(stores: Stores, ecs: Any) -> None:
    api = service(ecs, "api", task_definition(ecs, "api", {"api": RELEASE["api"]}))
    progress = Announced()
    check(stores.session, [api], progress=progress)
    assert progress.steps == ["waiting for 1 ECS service(s) to finish rolling out"]


def test_a_service_ecs_does_not_know_is_an_error_naming_it(stores: Stores, ecs: Any) -> None:
    api = service(ecs, "api", task_definition(ecs, "api", {"api": RELEASE["api"]}))
    with pytest.raises(AwsFailure, match=r"ECS has no service main/gone \(MISSING\)"):
        check(stores.session, [api, "main/gone"])


def test_a_task_definition_is_read_once_a_run(stores: Stores, ecs: Any) -> None:
    assert stores.session is not None
    arn = task_definition(ecs, "api", {"api": RELEASE["api"]})
    store = EcsServices(stores.session)
    assert store.images(arn) == {"api": RELEASE["api"]}
    stores.session.requests.clear()
    assert store.images(arn) == {"api": RELEASE["api"]}
    assert not stores.session.requests


def test_a_check_is_documented_with_its_verdict_time_and_detail() -> None:
    assert Check("ecs main/api", True, 12.345, "runs api:7").to_document() == {
        "check": "ecs main/api",
        "ok": True,
        "seconds": 12.3,
        "detail": "runs api:7",
    }


# What moto's ECS cannot show, shown through the fault proxy's rewrite of DescribeServices.


@pytest.fixture
def proxied(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A fresh moto server state behind the fault proxy, which the session under test uses."""
    moto_server.reset()
    proxy = FaultProxy(moto_server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.stop()


def describing_services(request: Request) -> bool:
    return request.operation == "ecs.DescribeServices"


def server_ecs(moto_server: MotoServer) -> Any:
    return boto3.client("ecs", region_name=REGION, endpoint_url=moto_server.url)


def with_deployments(*deployments: dict[str, Any], task_definition: str | None = None) -> Any:
    """A rewrite: every service answered has these deployments (and runs `task_definition`)."""

    def rewrite(answer: dict[str, Any]) -> dict[str, Any]:
        for described in answer["services"]:
            described["deployments"] = [dict(d) for d in deployments]
            if task_definition:
                described["taskDefinition"] = task_definition
        return answer

    return rewrite


def deployment(status: str, rollout: str, reason: str, arn: str) -> dict[str, Any]:
    return {
        "id": f"ecs-svc/{abs(hash((status, arn))) % 10**12}",
        "status": status,
        "rolloutState": rollout,
        "rolloutStateReason": reason,
        "taskDefinition": arn,
        "desiredCount": 2,
        "runningCount": 0,
    }


def test_a_rollout_in_progress_is_waited_for_and_passes_once_completed(
    moto_server: MotoServer, proxied: FaultProxy
) -> None:
    ecs = server_ecs(moto_server)
    arn = task_definition(ecs, "api", {"api": RELEASE["api"]})
    api = service(ecs, "api", arn, desired=0)  # nothing to run: moto says COMPLETED
    in_progress = deployment("PRIMARY", "IN_PROGRESS", "ECS deployment in progress.", arn)
    proxied.add(
        Rule(describing_services, "rewrite", times=2, rewrite=with_deployments(in_progress))
    )
    time = FakeTime()
    [passed] = check(AwsSession(region=REGION), [api], time)
    assert passed.ok and passed.seconds == 6.0
    assert time.sleeps == [2, 4]


def test_a_failed_rollout_fails_naming_the_service_and_why(
    moto_server: MotoServer, proxied: FaultProxy
) -> None:
    ecs = server_ecs(moto_server)
    arn = task_definition(ecs, "api", {"api": RELEASE["api"]})
    api = service(ecs, "api", arn, desired=0)
    reason = "ECS deployment circuit breaker: tasks failed to start."
    failed = deployment("PRIMARY", "FAILED", reason, arn)
    proxied.add(Rule(describing_services, "rewrite", rewrite=with_deployments(failed)))
    with pytest.raises(GateFailed) as raised:
        check(AwsSession(region=REGION), [api])
    assert str(raised.value) == (
        f"ECS rollout failed: main/api: rollout FAILED ({reason}); "
        f"runs api:1 (api={RELEASE['api']})"
    )


def test_a_circuit_breaker_rollback_fails_at_once_naming_the_old_task_definition(
    moto_server: MotoServer, proxied: FaultProxy
) -> None:
    ecs = server_ecs(moto_server)
    old = task_definition(ecs, "api", {"api": image("api", "one")})
    new = task_definition(ecs, "api", {"api": RELEASE["api"]})
    api = service(ecs, "api", new, desired=0)
    rolling_back = deployment(
        "PRIMARY",
        "IN_PROGRESS",
        "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1111.",
        old,
    )
    failed = deployment("ACTIVE", "FAILED", "ECS deployment circuit breaker: tasks failed.", new)
    rewrite = with_deployments(rolling_back, failed, task_definition=old)
    proxied.add(Rule(describing_services, "rewrite", rewrite=rewrite))
    time = FakeTime()
    with pytest.raises(GateFailed) as raised:
        check(AwsSession(region=REGION), [api], time)
    message = str(raised.value)
    assert message.startswith("ECS rollout failed: main/api: rolled back by ECS (")
    assert message.endswith(f"; runs api:1 (api={image('api', 'one')})")
    assert "tasks failed" in message
    assert time.sleeps == []


def test_a_completed_rollback_to_the_old_task_definition_fails_naming_it(
    moto_server: MotoServer, proxied: FaultProxy
) -> None:
    ecs = server_ecs(moto_server)
    old = task_definition(ecs, "api", {"api": image("api", "one")})
    new = task_definition(ecs, "api", {"api": RELEASE["api"]})
    api = service(ecs, "api", new, desired=0)
    rolled_back = deployment("PRIMARY", "COMPLETED", "ECS deployment ecs-svc/1111 completed.", old)
    rewrite = with_deployments(rolled_back, task_definition=old)
    proxied.add(Rule(describing_services, "rewrite", rewrite=rewrite))
    with pytest.raises(GateFailed, match=r"main/api: container api has .*api:one.*; runs api:1 \("):
        check(AwsSession(region=REGION), [api])
