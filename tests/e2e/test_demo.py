"""`make demo`: the whole story runs on this machine, and its moto server never outlives it."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.project import ROOT

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def make_demo(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=ROOT,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def server_pid(output: str) -> int:
    found = re.search(r"moto server \(pid (\d+)\) on http://127\.0\.0\.1:\d+", output)
    assert found, output
    return int(found.group(1))


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform on PATH")
def test_the_demo_tells_the_whole_story_and_stops_its_server() -> None:
    result = make_demo()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    out = result.stdout
    for line in (
        f"Published /shop/image_ids/latest/web = {ECR}/web:1.0.0",
        "Deployed v1 to stage.",
        "Deployed v1 to prod.",
        "Deployed v2 to prod.",
        "Rolled prod back to v1 as v3.",
    ):
        assert line in out

    def runs(task: str, tag: str) -> bool:
        """ECS runs the image pinned to the digest `tag` named (deploys pin ECR images)."""
        name = tag.split(":")[0]
        pattern = rf"ECS {task} runs {re.escape(ECR)}/{name}@sha256:[0-9a-f]{{64}} \(= {tag}\)"
        return re.search(pattern, out) is not None

    assert runs("shop-prod-api:3", "api:1.0.0")
    # the selective update took api 1.0.1 to prod and left worker 1.1.0 in stage only
    assert runs("shop-prod-api:2", "api:1.0.1")
    assert runs("shop-prod-worker:1", "worker:1.0.0")
    assert re.search(r"^prod +v3 ", out, re.MULTILINE)
    [board] = re.findall(r"^The release board of the demo: (.+)$", out, re.MULTILINE)
    assert "<h1>shop</h1>" in Path(board).read_text()
    assert_gone(server_pid(out))


def test_a_failing_demo_still_stops_its_server() -> None:
    result = make_demo(TF_RELEASE_TERRAFORM="false")  # every Terraform run fails
    assert result.returncode != 0
    assert "demo failed: `tf-release apply --env stage" in result.stderr
    assert_gone(server_pid(result.stdout))
