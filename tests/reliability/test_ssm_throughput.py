"""Guarantee 5, SSM's limits: PutParameter at 3 a second, reads sharing 40 a second, and
TooManyUpdates for concurrent writes of one parameter, enforced by the fault proxy as SSM
enforces them. Counts, not timings: `make bench` times a deploy under the limit."""

import json
import subprocess

import pytest

from tests.conftest import BIN, Cli
from tests.support.faults import FaultProxy, Rule
from tests.support.project import PROJECT, image
from tf_release.flows import release
from tf_release.stores.aws import TokenBucket, ssm_write_pace

READS = ("ssm.GetParameter", "ssm.GetParameters", "ssm.GetParametersByPath")


def test_the_write_pace_keeps_its_rate_after_its_burst() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    bucket = TokenBucket(2.0, 3.0, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.take() for _ in range(7)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5]


def test_an_account_with_a_higher_write_limit_is_paced_at_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TF_RELEASE_SSM_WRITES_PER_SECOND", "10")
    pace = ssm_write_pace()
    assert (pace.rate, pace.burst) == (9.0, 10.0)


def test_a_write_limit_that_is_not_a_number_is_one_line(cli: Cli) -> None:
    cli.env["TF_RELEASE_SSM_WRITES_PER_SECOND"] = "fast"
    result = cli.run("publish", "api", image("api", "one"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tf-release: error: TF_RELEASE_SSM_WRITES_PER_SECOND must be a number of writes a "
        "second, not 'fast'"
    )


def test_a_deploy_under_the_write_limit_paces_its_writes_instead_of_retrying(
    faulty: Cli, proxy: FaultProxy
) -> None:
    changing = 15
    stores = faulty.stores()
    for n in range(changing):
        release.publish(stores, f"svc{n:02d}", image(f"svc{n:02d}", "one"))
    limit = proxy.limit(["ssm.PutParameter"], per_second=3)
    faulty.ok("apply", "-e", "stage", "-r", "fifteen at once", "--yes")
    assert limit.passed["ssm.PutParameter"] == changing + 1  # and the version pointer
    assert limit.throttled["ssm.PutParameter"] >= 1  # SSM said so once; then the pace held
    assert limit.throttled_share("ssm.PutParameter", after=1.0) <= 0.2


def test_ten_concurrent_publishes_under_the_write_limit_all_succeed(
    faulty: Cli, proxy: FaultProxy
) -> None:
    limit = proxy.limit(["ssm.PutParameter"], per_second=3)
    runs = [faulty.start("publish", f"svc{n}", image(f"svc{n}", "one")) for n in range(10)]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    assert limit.passed["ssm.PutParameter"] == 10
    assert len(faulty.stores().images.read("latest")) == 10


def test_concurrent_publishes_of_one_image_ride_out_too_many_updates(
    faulty: Cli, proxy: FaultProxy
) -> None:
    busy = proxy.add(
        Rule(
            lambda r: r.operation == "ssm.PutParameter",
            "fail",
            times=3,
            code="TooManyUpdates",
            status=400,
        )
    )
    urls = [image("api", "one"), image("api", "two")]
    runs = [faulty.start("publish", "api", url) for url in urls]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    assert busy.applied == 3
    assert faulty.stores().images.read("latest")["api"] in urls


def test_terraforms_parallel_reads_under_the_read_limit_all_return(
    faulty: Cli, proxy: FaultProxy
) -> None:
    stores = faulty.stores()
    images = {f"svc{n:02d}": image(f"svc{n:02d}", "one") for n in range(45)}
    for name, url in images.items():
        release.publish(stores, name, url)
    release.apply(stores, "stage", "forty-five")
    limit = proxy.limit(READS, per_second=40)
    query = json.dumps({"project": PROJECT, "environment": "stage"})
    runs = [
        subprocess.Popen(
            [str(BIN / "tf-release-manifest")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=faulty.env,
        )
        for _ in range(10)
    ]
    for run in runs:
        out, err = run.communicate(query, timeout=120)
        assert run.returncode == 0, err
        assert json.loads(out) == {**images, "_version": "v1"}
    assert sum(limit.passed.values()) == 10 * (1 + 5)  # the pointer and five pages each
