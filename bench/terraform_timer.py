"""Stands in for `terraform` during the benchmark: runs the real one and logs how long it took,
so that tf-release's own time can be told apart from Terraform's."""

import os
import subprocess
import sys
import time


def main() -> None:
    started = time.perf_counter()
    code = subprocess.call([os.environ["BENCH_REAL_TERRAFORM"], *sys.argv[1:]])
    with open(os.environ["BENCH_TERRAFORM_LOG"], "a") as log:
        log.write(f"{time.perf_counter() - started}\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
