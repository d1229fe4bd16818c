"""The Python API: what a script needs to release, typed, as the CLI does it (the CLI is one
face over the same flows). `import tf_release` exports these names (its `__all__` lists them).

    import tf_release

    project = tf_release.open_project()  # tf-release.toml here, or TF_RELEASE_CONFIG
    tf_release.publish(project, "api", "ghcr.io/acme/api:1.4.2")
    prepared = tf_release.prepare(project, "stage", "search fix")
"""

from pathlib import Path

# the names `import tf_release` exports, re-exported from where they live
from tf_release.flows.deploy import DeployOptions as DeployOptions
from tf_release.flows.deploy import DeployResult as DeployResult
from tf_release.flows.deploy import deploy as deploy
from tf_release.flows.release import Prepared as Prepared
from tf_release.flows.release import RolledBack as RolledBack
from tf_release.flows.release import apply as apply
from tf_release.flows.release import prepare as prepare
from tf_release.flows.release import publish as publish
from tf_release.flows.release import retire as retire
from tf_release.flows.release import rollback as rollback
from tf_release.flows.views import EnvironmentStatus as EnvironmentStatus
from tf_release.flows.views import HistoryEntry as HistoryEntry
from tf_release.flows.views import history as history
from tf_release.flows.views import show as show
from tf_release.flows.views import status as status
from tf_release.model.config import find_config, load_config
from tf_release.model.errors import BadInput as BadInput
from tf_release.model.errors import HeldByPolicy as HeldByPolicy
from tf_release.model.errors import LockHeld as LockHeld
from tf_release.model.errors import ReleaseError as ReleaseError
from tf_release.stores.bundle import Stores as Stores
from tf_release.stores.bundle import open_stores
from tf_release.terraform.runner import runner_for as runner_for


def open_project(
    config: str | Path | None = None, profile: str | None = None, region: str | None = None
) -> Stores:
    """A project's stores, from its tf-release.toml (None: found as the CLI finds it), on the
    caller's AWS session (`profile`, `region` as the CLI's global options)."""
    found = find_config(None if config is None else str(config))
    return open_stores(load_config(found), profile, region)
