"""What AWS answers and moto does not, shown to the tool through the fault proxy: S3's 404 and
409 on conditional writes, SSM's short pages and its parameter limits."""

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.support.faults import FaultProxy, Request, Rule
from tests.support.project import BUCKET, CONFIG, PROJECT, image
from tf_release.flows import release
from tf_release.model.errors import AwsFailure, BadInput
from tf_release.model.manifest import Manifest
from tf_release.model.state import EnvironmentState
from tf_release.stores.aws import aws_errors
from tf_release.stores.bundle import Stores
from tf_release.stores.s3 import STATE_ATTEMPTS

STATE = f"/{BUCKET}/{PROJECT}/environments/stage/state.json"
BY_PATH = "ssm.GetParametersByPath"


def proxied(cli: Cli, monkeypatch: pytest.MonkeyPatch, proxy: FaultProxy) -> Stores:
    """The project's stores in-process, reaching moto through the proxy."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    return cli.stores()


def conditional_put(key: str, header: str) -> Callable[[Request], bool]:
    def match(request: Request) -> bool:
        return request.operation == "s3.PUT" and request.path == key and header in request.headers

    return match


def conflicting(match: Callable[[Request], bool], times: int | None = None) -> Rule:
    """S3's 409 ConditionalRequestConflict: another conditional write of the key is in flight."""
    return Rule(match, "fail", times=times, code="ConditionalRequestConflict", status=409)


def later(version: int) -> "object":
    return lambda state: replace(state, latest_version=version)


def test_a_state_update_that_meets_no_such_key_reads_again_and_creates_it(
    cli: Cli, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS answers If-Match on a deleted object with 404 NoSuchKey (moto with 412)."""
    stores = proxied(cli, monkeypatch, proxy)
    stale = stores.states.update("stage", later(1))
    cli.client("s3").delete_object(Bucket=BUCKET, Key=STATE.split("/", 2)[2])
    gone = proxy.add(
        Rule(conditional_put(STATE, "if-match"), "fail", times=1, code="NoSuchKey", status=404)
    )
    state, _ = stores.states.update("stage", later(7), current=stale)
    assert gone.applied == 1
    assert state == EnvironmentState(latest_version=7)
    assert stores.states.get("stage")[0] == state


def test_a_state_update_that_meets_a_conditional_request_conflict_reads_again_and_retries(
    cli: Cli, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = proxied(cli, monkeypatch, proxy)
    stores.states.update("stage", later(1))
    conflict = proxy.add(conflicting(conditional_put(STATE, "if-match"), times=1))
    assert stores.session is not None
    stores.session.requests.clear()
    stores.states.update("stage", lambda state: replace(state, latest_version=2))
    assert conflict.applied == 1
    assert stores.session.requests == {"s3.GetObject": 2, "s3.PutObject": 2}
    assert stores.states.get("stage")[0].latest_version == 2


def test_a_state_update_that_never_gets_through_gives_up_in_one_line(
    cli: Cli, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compare-and-swap that meets a conflict every time is not settling: after ten attempts
    (about two seconds of backing off) it fails, rather than retrying for ever."""
    stores = proxied(cli, monkeypatch, proxy)
    stores.states.update("stage", later(1))
    conflict = proxy.add(conflicting(conditional_put(STATE, "if-match")))
    with pytest.raises(AwsFailure, match="refused each of 10 attempts to update it"):
        stores.states.update("stage", later(2))
    assert conflict.applied == STATE_ATTEMPTS
    assert stores.states.get("stage")[0].latest_version == 1


def test_a_state_update_that_loses_to_other_writers_more_than_ten_times_still_gets_through(
    cli: Cli,
) -> None:
    """Losing to a run that wrote first is progress, not a stall: sixteen runs preparing at once
    lose many times in a row, and each must still get its turn."""
    stores, rival = cli.stores(), cli.stores()
    stores.states.update("stage", later(1))
    rivals = iter(range(2 * STATE_ATTEMPTS))

    def change(state: EnvironmentState) -> EnvironmentState:
        if next(rivals, None) is not None:  # another run writes between our read and our write
            rival.states.update("stage", later(state.latest_version + 1))
        return replace(state, latest_version=state.latest_version + 1)

    state, _ = stores.states.update("stage", change)
    assert state.latest_version == 2 + 2 * STATE_ATTEMPTS
    assert stores.states.get("stage")[0] == state


def test_a_manifest_create_that_meets_a_conditional_request_conflict_keeps_its_number(
    cli: Cli, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = proxied(cli, monkeypatch, proxy)
    key = f"/{BUCKET}/{PROJECT}/release_manifests/stage/v1.json"
    conflict = proxy.add(conflicting(conditional_put(key, "if-none-match"), times=2))

    def build(version: int) -> Manifest:
        return Manifest(
            PROJECT, "stage", version, {"api": image("api", "one")}, "r",
            datetime(2026, 1, 1, tzinfo=UTC), "arn:aws:sts::123456789012:user/moto", "latest",
        )  # fmt: skip

    assert stores.manifests.create_next(build, after=0)[0].version == 1
    assert conflict.applied == 2
    assert stores.manifests.get("stage", 1) is not None
    assert not stores.manifests.exists_version("stage", 2)


def test_image_reads_keep_paging_past_empty_and_short_pages(
    cli: Cli, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = proxied(cli, monkeypatch, proxy)
    published = {f"svc{n:02d}": image(f"svc{n:02d}", "one") for n in range(25)}
    for name, url in published.items():
        release.publish(stores, name, url)
    by_path = proxy.add(Rule(lambda r: r.operation == BY_PATH, "short-page", keep=0, times=1))
    short = proxy.add(Rule(lambda r: r.operation == BY_PATH, "short-page", keep=3))
    assert stores.images.read("latest") == published
    assert by_path.applied == 1 and short.applied >= 2


def test_tf_release_manifest_does_not_stop_at_a_short_page_while_more_are_due(
    faulty: Cli, proxy: FaultProxy
) -> None:
    stores = faulty.stores()
    deployed = {f"svc{n:02d}": image(f"svc{n:02d}", "one") for n in range(12)}
    for name, url in deployed.items():
        release.publish(stores, name, url)
    release.apply(stores, "stage", "twelve")
    short = proxy.add(Rule(lambda r: r.operation == BY_PATH, "short-page", keep=3))
    query = json.dumps({"project": PROJECT, "environment": "stage"})
    result = faulty.run(input=query, script="tf-release-manifest")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {**deployed, "_version": "v1"}
    assert short.applied == 2  # 3 + the other 7, then 2 + the last 0 (stopped: it has all 12)


def test_parameter_limit_exceeded_is_one_line_naming_the_limit_and_what_to_do(
    faulty: Cli, proxy: FaultProxy
) -> None:
    proxy.add(
        Rule(
            lambda r: r.operation == "ssm.PutParameter",
            "fail",
            code="ParameterLimitExceeded",
            status=400,
        )
    )
    result = faulty.run("publish", "api", image("api", "one"))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "tf-release: error: AWS error while writing /catalogue/image_ids/latest/api to SSM: "
        "ParameterLimitExceeded: this account and region hold the 10,000 standard parameters"
    )
    assert "delete parameters nobody uses" in line


def test_a_value_too_big_for_ssm_is_refused_before_anything_is_written(stores: Stores) -> None:
    assert stores.session is not None
    stores.session.requests.clear()
    with pytest.raises(BadInput, match="over 4096 bytes does not fit in SSM"):
        stores.images.put("latest", "api", "registry.example.com/api:" + "x" * 5000)
    assert not stores.session.requests


def test_doctor_counts_the_parameters_the_project_will_hold(cli: Cli) -> None:
    release.publish(cli.stores(), "api", image("api", "one"))
    result = cli.run("doctor", "--json")
    [check] = [c for c in json.loads(result.stdout) if c["check"] == "ssm parameters"]
    assert check["ok"]
    assert check["detail"].endswith("the project will hold 5 parameter(s) of SSM's 10,000 a region")


def test_doctor_warns_when_the_project_nears_the_parameter_limit(cli: Cli) -> None:
    """A warning, not a failure: nothing fails yet, and the rest of the set-up is fine."""
    names = [f"svc{n:04d}" for n in range(3000)]
    Path(cli.env["TF_RELEASE_CONFIG"]).write_text(f"images = {json.dumps(names)}\n{CONFIG}")
    result = cli.run("doctor")
    assert result.returncode == 0
    [line] = [x for x in result.stdout.splitlines() if "parameter limit" in x]
    assert line.startswith(
        "warn ssm parameter limit: the project will hold 9,002 parameters, near SSM's 10,000"
    )


def test_an_html_error_page_from_a_proxy_is_one_line_without_markup(
    faulty: Cli, proxy: FaultProxy
) -> None:
    """Seen from tf-release-manifest: a 502 page from a load balancer printed whole."""
    stores = faulty.stores()
    release.publish(stores, "api", image("api", "one"))
    release.apply(stores, "stage", "one")
    proxy.add(Rule(lambda r: r.operation.startswith("ssm."), "html", status=502))
    query = json.dumps({"project": PROJECT, "environment": "stage"})
    result = faulty.run(input=query, script="tf-release-manifest")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "502 Bad Gateway" in line and "<" not in line and len(line) < 400, line


def test_an_error_botocore_splits_over_lines_keeps_its_cause() -> None:
    """botocore puts the unknown parameter on the second line of the message."""
    import botocore.exceptions

    report = 'Unknown parameter in input: "IfMatch", must be one of: ACL, Body, Bucket'
    with pytest.raises(AwsFailure) as raised, aws_errors("writing s3://b/k"):
        raise botocore.exceptions.ParamValidationError(report=report)
    assert str(raised.value) == (
        "AWS error while writing s3://b/k: Parameter validation failed: Unknown parameter in "
        'input: "IfMatch", must be one of: ACL, Body, Bucket'
    )
