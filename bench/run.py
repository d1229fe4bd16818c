"""`make bench`: what each tf-release operation costs, against a moto server on 127.0.0.1.

Request counts are exact (botocore's before-send events, counted by tf-release itself). Wall
times are the median of 5 runs after a warm-up, each shown beside a floor measured in the same
run, because absolute times on a shared machine mean little. This is a benchmark: `make test`
pins the request counts, never the times.
"""

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.faults import FaultProxy  # noqa: E402
from tests.support.moto import MotoServer  # noqa: E402
from tests.support.terraform import write_cli_config  # noqa: E402
from tf_release.faces import board, external  # noqa: E402
from tf_release.flows import deploy, release, repair, views  # noqa: E402
from tf_release.model import naming  # noqa: E402
from tf_release.model.config import load_config  # noqa: E402
from tf_release.model.manifest import Manifest  # noqa: E402
from tf_release.model.state import Deployment, EnvironmentState  # noqa: E402
from tf_release.stores.bundle import Stores, open_stores  # noqa: E402

REGION, BUCKET, PROJECT = "eu-west-1", "bench-releases", "catalogue"
BIN = Path(sys.executable).parent
RUNS = 5


def image(name: str, tag: str) -> str:
    return f"registry.example.com/{PROJECT}/{name}:{tag}"


class Bench:
    def __init__(self, server: MotoServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.config_path = folder / "tf-release.toml"
        self.rows: list[tuple[str, str, str]] = []

    def fresh(self, terraform_dir: str | None = None) -> Stores:
        self.server.reset()
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        stage = f'terraform_dir = "{terraform_dir}"\n' if terraform_dir else ""
        self.config_path.write_text(
            f'project = "{PROJECT}"\nbucket = "{BUCKET}"\nregion = "{REGION}"\n\n'
            f'[environments.stage]\npromote_from = "latest"\n{stage}'
            '\n[registries."registry.example.com"]\ncheck = false\n'  # made up: never asked
        )
        return open_stores(load_config(self.config_path))

    def count(
        self, action: Callable[..., object], stores: Stores, *args: object, **kwargs: object
    ) -> str:
        """The requests one call of `action(stores, …)` makes, as one run of the tool."""
        assert stores.session is not None
        stores.session.requests.clear()
        stores.__dict__.pop("caller", None)  # each run of the tool asks STS once
        action(stores, *args, **kwargs)
        return str(sum(stores.session.requests.values()))

    def add(self, operation: str, measured: str, target: str) -> None:
        self.rows.append((operation, measured, target))
        print(f"  {operation}: {measured} (target {target})", file=sys.stderr, flush=True)


def publish_many(stores: Stores, count: int, tag: str) -> None:
    for n in range(count):
        stores.images.put("latest", f"svc{n:03d}", image(f"svc{n:03d}", tag))


def seed_manifests(stores: Stores, count: int) -> None:
    """`count` valid manifests written straight to S3, and the state that names the newest."""
    s3 = boto3.client("s3", region_name=REGION)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for version in range(1, count + 1):
        manifest = Manifest(
            PROJECT, "stage", version, {"api": image("api", f"t{version}")}, "seed",
            start + timedelta(minutes=version), "arn:aws:sts::123456789012:user/bench", "latest",
        )  # fmt: skip
        key = naming.manifest_key(PROJECT, "stage", version)
        s3.put_object(Bucket=BUCKET, Key=key, Body=manifest.to_json())
    state = EnvironmentState(latest_version=count)
    s3.put_object(Bucket=BUCKET, Key=naming.state_key(PROJECT, "stage"), Body=state.to_json())


def seed_deployments(stores: Stores, count: int, versions: int = 1) -> datetime:
    """`count` deployment records, one a minute, of the first `versions` manifests in turn."""
    s3 = boto3.client("s3", region_name=REGION)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(count):
        at = start + timedelta(minutes=n)
        record = Deployment(
            PROJECT, "stage", f"seed-{n}", n % versions + 1, "succeeded" if n % 7 else "failed",
            at, at,
            "arn:aws:sts::123456789012:user/bench", "bench", None,
        )  # fmt: skip
        s3.put_object(Bucket=BUCKET, Key=record.key, Body=record.to_json())
    return start + timedelta(minutes=count // 2, seconds=30)


def request_counts(bench: Bench) -> None:
    for n in (10, 100, 500):
        names = tuple(f"svc{i:03d}" for i in range(n))
        stores = bench.fresh()
        publish_many(stores, n, "one")
        bench.add(
            f"prepare, N={n}, by path (no allow-list)",
            bench.count(release.prepare, stores, "stage", "bench", force=True),
            f"≤ {math.ceil(n / 10) + 5}",
        )
        stores.config = replace(stores.config, images=names)
        bench.add(
            f"prepare, N={n}, allow-list",
            bench.count(release.prepare, stores, "stage", "bench", force=True),
            f"≤ {math.ceil(n / 10) + 5}",
        )
        bench.add(
            f"deploy without Terraform, N={n}, k={n}",
            bench.count(deploy.deploy, stores, "stage"),
            f"≤ {math.ceil(n / 10) + n + 12}",
        )
        stores.images.put("latest", "svc000", image("svc000", "two"))
        release.prepare(stores, "stage", "one change")
        bench.add(
            f"deploy without Terraform, N={n}, k=1",
            bench.count(deploy.deploy, stores, "stage"),
            f"≤ {math.ceil(n / 10) + 1 + 12}",
        )
        session = external.session_for(REGION)
        external.read_release(PROJECT, "stage", session)
        bench.add(
            f"tf-release-manifest, N={n}",
            str(sum(session.requests.values())),
            f"≤ {math.ceil(n / 10) + 1}",
        )
        bench.add(
            f"publish, N={n}",
            bench.count(release.publish, stores, "svc000", image("svc000", "three")),
            "1",
        )
    for m in (10, 1_000, 10_000):
        stores = bench.fresh()
        seed_manifests(stores, m)
        publish_many(stores, 10, "one")
        stores.config = replace(stores.config, images=tuple(f"svc{i:03d}" for i in range(10)))
        bench.add(
            f"prepare, N=10, M={m}, allow-list",
            bench.count(release.prepare, stores, "stage", "bench"),
            "≤ 6",
        )
        bench.add(
            f"history --limit 20, M={m}",
            bench.count(views.history, stores, "stage", 20),
            "≤ 25",
        )
    stores = bench.fresh()
    seed_manifests(stores, 1)
    at = seed_deployments(stores, 10_000)
    bench.add(
        "status --at TIME, D=10000",
        bench.count(views.status, stores, ["stage"], at=at),
        "≤ 12",
    )
    bench.add(
        "status, D=10000",
        bench.count(views.status, stores, ["stage"]),
        "≤ 2",
    )


def history_views(bench: Bench) -> None:
    """`show` of the oldest version and the 30-day board, at any length of history: with the
    indexes a deploy keeps (here rebuilt by repair), and, at D=1000, without them (a project
    older than the indexes)."""

    def measured(action: Callable[..., object], stores: Stores, *args: object) -> str:
        requests = bench.count(action, stores, *args)
        took = []
        for _ in range(RUNS):
            started = time.perf_counter()
            action(stores, *args)
            took.append(time.perf_counter() - started)
        return f"{requests} requests, {statistics.median(took) * 1000:.0f} ms"

    for count in (10, 100, 1000, -1000):
        stores = bench.fresh()
        seed_manifests(stores, 10)
        end = seed_deployments(stores, abs(count), versions=10) + timedelta(days=1)
        stores.clock = lambda end=end: end
        indexed = count > 0
        if indexed:
            repair.rebuild_indexes(stores, "stage")
        label = f"D={abs(count)}" + ("" if indexed else ", no indexes (older project)")
        show, draw = ("≤ 4 requests", "≤ 3 requests") if indexed else ("the record", "the record")
        bench.add(f"show v1, {label}", measured(views.show, stores, "stage", 1), show)
        bench.add(f"board --days 30, {label}", measured(board.gather, stores, 30), draw)


def median_seconds(argv: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    def once() -> float:
        started = time.perf_counter()
        subprocess.run(argv, env=env, input=stdin, text=True, capture_output=True, check=True)
        return time.perf_counter() - started

    once()  # warm-up: file caches, .pyc files
    return statistics.median(once() for _ in range(RUNS))


def wall_times(bench: Bench, env: dict[str, str]) -> None:
    python = sys.executable
    typer_floor = median_seconds([python, "-c", "import typer"], env)
    for args in (["--help"], ["--version"]):
        took = median_seconds([str(BIN / "tf-release"), *args], env)
        bench.add(
            f"tf-release {args[0]}",
            f"{took * 1000:.0f} ms = {took / typer_floor:.2f}x import typer "
            f"({typer_floor * 1000:.0f} ms)",
            "≤ 1.5 x",
        )
    stores = bench.fresh()
    publish_many(stores, 100, "one")
    release.apply(stores, "stage", "bench")
    one_liner = (
        "import boto3; c = boto3.client('ssm'); "
        "[p for page in c.get_paginator('get_parameters_by_path')"
        f".paginate(Path='/{PROJECT}/image_ids/stage') for p in page['Parameters']]"
    )
    floor = median_seconds([python, "-c", one_liner], env)
    query = json.dumps({"project": PROJECT, "environment": "stage"})
    took = median_seconds([str(BIN / "tf-release-manifest")], env, stdin=query)
    bench.add(
        "tf-release-manifest, N=100",
        f"{took * 1000:.0f} ms = {took / floor:.2f}x boto3 one-liner ({floor * 1000:.0f} ms)",
        "≤ 1.25 x",
    )


def deploy_time(bench: Bench, env: dict[str, str]) -> None:
    terraform = shutil.which("terraform")
    plugins = os.environ.get("TF_RELEASE_TEST_PLUGIN_DIR")
    if terraform is None:
        bench.add("deploy, N=100, example stack", "skipped: no terraform on PATH", "≤ 1 s own time")
        return
    shutil.copytree(ROOT / "terraform", bench.folder / "terraform", dirs_exist_ok=True)
    example = "terraform/examples/ecs_service"
    names = [f"svc{n:03d}" for n in range(100)]
    (bench.folder / example / "terraform.tfvars").write_text(
        f'environment = "stage"\nimages = {json.dumps(names)}\n'
    )
    stores = bench.fresh(terraform_dir=example)
    timer = ROOT / "bench" / "terraform-timer"
    log = bench.folder / "terraform-times.log"
    run_env = {
        **env,
        "TF_CLI_CONFIG_FILE": str(write_cli_config(bench.folder / "tf"))
        if plugins
        else env.get("TF_CLI_CONFIG_FILE", ""),
        "TF_RELEASE_TERRAFORM": str(timer),
        "BENCH_REAL_TERRAFORM": terraform,
        "BENCH_TERRAFORM_LOG": str(log),
        "PATH": f"{BIN}{os.pathsep}{env['PATH']}",
    }

    def timed_deploy(tag: str, changing: int) -> tuple[float, float]:
        """tf-release's own time and Terraform's, for a deploy where `changing` images change."""
        publish_many(stores, changing, tag)
        release.prepare(stores, "stage", tag)
        log.write_text("")
        started = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "tf-release"), "deploy", "-e", "stage", "--yes"],
            env=run_env, cwd=bench.folder, capture_output=True, text=True,
        )  # fmt: skip
        total = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"deploy failed: {done.stderr.strip().splitlines()[-1]}")
        terraform_time = sum(float(line) for line in log.read_text().split())
        return total - terraform_time, terraform_time

    timed_deploy("first", 100)  # initialises the stack
    for changing in (100, 1):
        runs = [timed_deploy(f"k{changing}-{n}", changing) for n in range(3)]
        bench.add(
            f"deploy, N=100, k={changing}, example stack",
            f"tf-release {statistics.median(r[0] for r in runs):.2f} s + Terraform "
            f"{statistics.median(r[1] for r in runs):.2f} s",
            "≤ 1 s own time",
        )


def ssm_write_limit(bench: Bench, env: dict[str, str], changing: int = 60) -> None:
    """A deploy that changes `changing` images while the fault proxy holds PutParameter to 3 a
    second, as SSM does: its time, and how many writes were throttled."""
    stores = bench.fresh()
    publish_many(stores, changing, "one")
    release.prepare(stores, "stage", "bench")
    proxy = FaultProxy(bench.server.url)
    limit = proxy.limit(["ssm.PutParameter"], per_second=3)
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [str(BIN / "tf-release"), "deploy", "-e", "stage", "--yes"],
            env={**env, "AWS_ENDPOINT_URL": proxy.url}, cwd=bench.folder,
            capture_output=True, text=True,
        )  # fmt: skip
        took = time.perf_counter() - started
    finally:
        proxy.stop()
    if done.returncode:
        raise SystemExit(f"deploy failed: {done.stderr.strip().splitlines()[-1]}")
    operation = "ssm.PutParameter"
    throttled, passed = limit.throttled[operation], limit.passed[operation]
    bench.add(
        f"deploy without Terraform, k={changing}, PutParameter held to 3/s",
        f"{took:.1f} s; {throttled} of {throttled + passed} writes throttled, "
        f"{limit.throttled_share(operation, after=1.0):.0%} after the first second",
        f"≤ {1.3 * changing / 3:.0f} s, ≤ 20 %",
    )


def main() -> None:
    only = set(sys.argv[1:])  # e.g. `bench/run.py deploy` for one part
    with tempfile.TemporaryDirectory(prefix="tf-release-bench-") as scratch:
        folder = Path(scratch)
        server = MotoServer(folder / "moto.log")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ENDPOINT_URL": server.url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        os.environ.update(env)
        bench = Bench(server, folder)
        try:
            with_config = {**env, "TF_RELEASE_CONFIG": str(bench.config_path)}
            if not only or "counts" in only:
                print("request counts …", file=sys.stderr)
                request_counts(bench)
            if not only or "views" in only:
                print("show and the board at any length of history …", file=sys.stderr)
                history_views(bench)
            if not only or "times" in only:
                print("wall times …", file=sys.stderr)
                wall_times(bench, with_config)
            if not only or "deploy" in only:
                deploy_time(bench, with_config)
            if not only or "ssm" in only:
                print("SSM's write limit …", file=sys.stderr)
                ssm_write_limit(bench, with_config)
        finally:
            server.stop()
    cpu = platform.processor() or platform.machine()
    print(f"\nMachine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}\n")
    print("| operation | measured | target |")
    print("|---|---|---|")
    for operation, measured, target in bench.rows:
        print(f"| {operation} | {measured} | {target} |")


if __name__ == "__main__":
    main()
