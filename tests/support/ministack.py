"""A ministack server on 127.0.0.1: the second AWS implementation, with the moto server's interface.

ministack (PyPI `ministack`) has its own S3, SSM, ECR, ECS and STS, no moto inside. It is not a
test dependency: it runs from its own venv (`ci/ministack` installs it), and the session fixture
starts it when TF_RELEASE_TEST_AWS=ministack, from the executable TF_RELEASE_TEST_MINISTACK names.
"""

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.moto import free_port
from tests.support.processes import stop
from tests.support.project import REGION

EXECUTABLE_VARIABLE = "TF_RELEASE_TEST_MINISTACK"


def executable() -> Path:
    value = os.environ.get(EXECUTABLE_VARIABLE)
    if not value:
        raise RuntimeError(
            f"TF_RELEASE_TEST_AWS=ministack needs {EXECUTABLE_VARIABLE}, the ministack executable "
            "(ci/ministack installs one and sets both)"
        )
    path = Path(value)
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{EXECUTABLE_VARIABLE}={value}: not an executable file")
    return path


class MinistackServer:
    kind = "ministack"

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        state = log.parent / "state"
        self._log = log.open("wb")
        self._process = subprocess.Popen(
            [str(executable())],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            # Its own environment: none of the caller's AWS settings, and nothing under /tmp
            # shared with another ministack (state and S3 data stay in memory; these are the
            # folders it would use).
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(log.parent),
                "BIND_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(self.port),
                "MINISTACK_REGION": REGION,
                "STATE_DIR": str(state),
                "S3_DATA_DIR": str(state / "s3"),
            },
        )
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"ministack exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/_ministack/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ministack did not start in 60 s")

    @property
    def pid(self) -> int:
        return self._process.pid

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_ministack/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.load(answer) == {"reset": "ok"}

    def stop(self) -> None:
        stop(self._process)
        self._log.close()
