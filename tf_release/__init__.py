"""tf-release: versioned release manifests for Docker images deployed with Terraform.

Use from Python: `tf_release.open_project()`, then `publish`, `prepare`, `deploy`, `apply`,
`rollback`, `status`, `history` and `show` on it (tf_release/faces/api.py). They are loaded
on first use, so that the tf-release command starts without them.
"""

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from tf_release.faces.api import (
        BadInput,
        DeployOptions,
        DeployResult,
        EnvironmentStatus,
        HeldByPolicy,
        HistoryEntry,
        LockHeld,
        Prepared,
        ReleaseError,
        RolledBack,
        Stores,
        apply,
        deploy,
        history,
        open_project,
        prepare,
        publish,
        retire,
        rollback,
        runner_for,
        show,
        status,
    )

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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tf_release.faces import api

        return getattr(api, name)
    raise AttributeError(f"module 'tf_release' has no attribute {name!r}")
