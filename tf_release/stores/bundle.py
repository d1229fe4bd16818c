"""The `Stores` bundle every flow and view works on, and the reads they share.

Below both the flows (release.py, deploy.py) and the views (views.py), so none imports another
sideways.
"""

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from tf_release.model import clock as clocks
from tf_release.model import naming
from tf_release.model.config import Config
from tf_release.model.errors import BadInput
from tf_release.model.index import VersionUse
from tf_release.model.manifest import Manifest
from tf_release.model.progress import Progress, Quiet
from tf_release.model.state import DeploymentEntry, EnvironmentState
from tf_release.stores.aws import AwsSession
from tf_release.stores.ecr import ImageRegistry
from tf_release.stores.ecs import EcsServices
from tf_release.stores.registry import DockerCredentials, OciRegistries, Registries
from tf_release.stores.s3 import (
    ApprovalStore,
    DeploymentLog,
    IndexStore,
    ManifestStore,
    StateStore,
    repair_hint,
)
from tf_release.stores.ssm import ImageStore


@dataclass
class Stores:
    """Everything a flow needs for one project: its config, the stores, and who is acting."""

    config: Config
    images: ImageStore
    manifests: ManifestStore
    states: StateStore
    deployments: DeploymentLog
    index: IndexStore
    approvals: ApprovalStore
    registry: Registries
    ecs: EcsServices
    identify: Callable[[], str]
    session: AwsSession | None = None
    roles: Mapping[str, AwsSession] = field(default_factory=dict)  # environment → its role
    clock: Callable[[], datetime] = clocks.now  # TF_RELEASE_NOW sets it
    host: str = field(default_factory=socket.gethostname)
    progress: Progress = field(default_factory=Quiet)  # the CLI shows a spinner on a terminal

    @cached_property
    def caller(self) -> str:
        return self.identify()

    def ecs_of(self, environment: str) -> EcsServices:
        """ECS where the environment's stack runs: its role's account when it has a role_arn."""
        role = self.roles.get(environment)
        return self.ecs if role is None else EcsServices(role)


def open_stores(
    config: Config,
    profile: str | None = None,
    region: str | None = None,
    progress: Progress | None = None,
) -> Stores:
    """The stores of a project on the caller's session (standard credential chain).

    An environment with a `role_arn` keeps its image pointers in that role's account: its SSM
    parameters, and the ECS services its deploys check, go through the assumed role. The bucket,
    ECR and the caller's identity stay on the caller's own session, so records name the person,
    not the role.
    """
    session = AwsSession(profile=profile, region=region or config.region)
    roles = {
        name: session.assume(env.role_arn)
        for name, env in config.environments.items()
        if env.role_arn
    }
    return Stores(
        config=config,
        images=ImageStore(session, config.project, roles),
        manifests=ManifestStore(session, config.bucket, config.project),
        states=StateStore(session, config.bucket, config.project),
        deployments=DeploymentLog(session, config.bucket, config.project),
        index=IndexStore(session, config.bucket, config.project),
        approvals=ApprovalStore(session, config.bucket, config.project),
        registry=Registries(
            ImageRegistry(session),
            OciRegistries(config.registry, DockerCredentials.from_environment()),
            config.checks,
        ),
        ecs=EcsServices(session),
        identify=session.caller_arn,
        session=session,
        roles=roles,
        progress=progress or Quiet(),
    )


def released(stores: Stores, environment: str, newest: DeploymentEntry | None) -> bool:
    """Whether anything was ever released here: a deployment record, or manifest v1."""
    return newest is not None or stores.manifests.exists_version(environment, 1)


def missing_state(stores: Stores, environment: str) -> str:
    return (
        f"the state of {environment} is missing ({stores.states.where(environment)}) though it "
        f"has manifests or deployment records: {repair_hint(environment)}"
    )


def state_to_write(stores: Stores, environment: str) -> tuple[EnvironmentState, str | None]:
    """The state a command that writes starts from. A missing state is a new environment's,
    unless something was deployed there: then the state was lost, and writing a fresh one would
    make the record lie about what ran, so every write waits for `repair` (one listing, only
    when the state is missing). Manifests alone do not count: the first prepare of a new
    environment writes v1 a moment before its state, and a writer beside it must go ahead."""
    current = stores.states.get(environment)
    if current[1] is None and stores.deployments.newest(environment) is not None:
        raise BadInput(missing_state(stores, environment))
    return current


def manifest_of(stores: Stores, environment: str, version: int) -> Manifest:
    manifest = stores.manifests.get(environment, version)
    if manifest is None:
        raise BadInput(f"{environment} has no manifest {naming.format_version(version)}")
    return manifest


def used_index(stores: Stores, environment: str, manifest: Manifest) -> VersionUse | None:
    """The index of how `manifest` was used, if it has one of its own: an index written for
    another manifest of that number (a prepare that lost the number) is not its."""
    use = stores.index.version_use(environment, manifest.version)
    written = naming.format_time(manifest.created_at)  # as stored: to the millisecond
    if use is None or naming.format_time(use.manifest_created_at) != written:
        return None
    return use


def probe_newest(stores: Stores, environment: str, state: EnvironmentState) -> int:
    """The state's newest version (0: none), checked forward in case a run died before
    updating it."""
    newest = state.latest_version
    while stores.manifests.exists_version(environment, newest + 1):
        newest += 1
    return newest


def newest_version(stores: Stores, environment: str, state: EnvironmentState) -> int:
    newest = probe_newest(stores, environment, state)
    if newest == 0:
        raise BadInput(f"{environment} has no manifests yet: run `tf-release prepare` first")
    return newest
