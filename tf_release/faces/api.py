"""The Python API: what a script needs to release, typed, as the CLI does it (the CLI is one
face over the same flows). `import tf_release` exports these names.

    import tf_release

    project = tf_release.open_project()  # tf-release.toml here, or TF_RELEASE_CONFIG
    tf_release.publish(project, "api", "ghcr.io/acme/api:1.4.2")
    prepared = tf_release.prepare(project, "stage", "search fix")
"""

from pathlib import Path

from tf_release.flows.deploy import DeployOptions, DeployResult, deploy
from tf_release.flows.release import Prepared, RolledBack, apply, prepare, publish, retire, rollback
from tf_release.flows.views import EnvironmentStatus, HistoryEntry, history, show, status
from tf_release.model.config import find_config, load_config
from tf_release.model.errors import BadInput, HeldByPolicy, LockHeld, ReleaseError
from tf_release.stores.bundle import Stores, open_stores
from tf_release.terraform.runner import runner_for

__all__ = [
    "BadInput",
    "DeployOptions",
    "DeployResult",
    "EnvironmentStatus",
    "HeldByPolicy",
    "HistoryEntry",
    "LockHeld",
    "Prepared",
    "ReleaseError",
    "RolledBack",
    "Stores",
    "apply",
    "deploy",
    "history",
    "open_project",
    "prepare",
    "publish",
    "retire",
    "rollback",
    "runner_for",
    "show",
    "status",
]


def open_project(
    config: str | Path | None = None, profile: str | None = None, region: str | None = None
) -> Stores:
    """A project's stores, from its tf-release.toml (None: found as the CLI finds it), on the
    caller's AWS session (`profile`, `region` as the CLI's global options)."""
    found = find_config(None if config is None else str(config))
    return open_stores(load_config(found), profile, region)
