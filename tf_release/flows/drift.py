"""`verify`: is the environment what its record says? A view: it reads SSM, ECR, and (when
asked) Terraform's plan and ECS, compares them with the deployed manifest, and writes nothing:
no lock, no SSM, no state, so it runs beside a deploy that holds the lock."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tf_release.flows.gates import image_problem, rollout_of, runs_of
from tf_release.model import naming
from tf_release.model.errors import BadInput, TerraformFailed
from tf_release.model.state import Deployed, Lock, partly_applied
from tf_release.stores.bundle import Stores
from tf_release.stores.ecs import EcsServices
from tf_release.stores.ssm import ReleasePointer
from tf_release.terraform.runner import PlanSummary

MARKS = {
    "changed": "~",
    "extra": "+",
    "missing": "-",
    "pointer": "~",
    "ecr": "!",
    "terraform": "~",
    "ecs": "~",
}
NAMED = {"ecr", "terraform", "ecs"}  # lines name the check before the subject: `! ecr api: …`


class TerraformDrift(Protocol):
    def drift(self) -> PlanSummary: ...


@dataclass(frozen=True)
class Difference:
    """One way the environment is not what the record says."""

    kind: str  # changed, extra, missing (SSM images), pointer, ecr, terraform, ecs
    subject: str  # the image, `release_version`, the Terraform resource or the ECS service
    detail: str

    @property
    def mark(self) -> str:
        return MARKS[self.kind]

    def line(self) -> str:
        named = f"{self.kind} " if self.kind in NAMED else ""
        return f"{self.mark} {named}{self.subject}: {self.detail}"

    def to_document(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "detail": self.detail}


@dataclass(frozen=True)
class Verification:
    environment: str
    version: int | None  # the deployed manifest; None when nothing is deployed
    differences: tuple[Difference, ...]
    checked: tuple[str, ...]  # ssm, pointer, ecr, terraform, ecs: what was compared
    lock: Lock | None = None  # a deploy in progress (or abandoned): compared anyway
    notes: tuple[str, ...] = field(default=())
    failed: str | None = None  # a check that could not run (the plan): the rest still told

    @property
    def drifted(self) -> bool:
        return bool(self.differences)

    def summary(self) -> str:
        against = naming.format_version(self.version) if self.version else "nothing deployed"
        checked = ", ".join(self.checked)
        if not self.differences:
            return f"{self.environment} agrees with its record ({against}); checked {checked}"
        return (
            f"{self.environment} drifted from its record ({against}): "
            f"{len(self.differences)} difference(s); checked {checked}"
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "version": naming.format_optional_version(self.version),
            "drifted": self.drifted,
            "differences": [difference.to_document() for difference in self.differences],
            "checked": list(self.checked),
            "lock": None if self.lock is None else self.lock.to_document(),
            "notes": list(self.notes),
            "failed": self.failed,
        }


def verify(
    stores: Stores,
    environment: str,
    terraform: TerraformDrift | None = None,
    ecs: bool = False,
) -> Verification:
    """Compare the environment with its deployed manifest: SSM's images and version pointer,
    ECR, and with `terraform` Terraform's plan, with `ecs` what its ECS services run."""
    env = stores.config.environment(environment)
    if ecs and not env.ecs_services:
        raise BadInput(
            f"{environment} has no ecs_services in {stores.config.path}: --ecs has nothing to "
            "compare"
        )
    state, _ = stores.states.get(environment)
    deployed = state.deployed
    notes: list[str] = []
    if state.lock is not None:
        notes.append(
            f"a deploy is in progress or was abandoned: {state.lock.describe()}; SSM may hold "
            "its images until it ends"
        )
    attempt = state.last_attempt
    if state.lock is None and attempt is not None and attempt.partly_applied and terraform is None:
        notes.append(
            f"the newest deploy ({naming.format_version(attempt.version)}, {attempt.outcome}) "
            f"stopped inside terraform apply: {partly_applied(environment)}"
        )
    with stores.progress.step(f"reading the image pointers of {environment}"):
        held = stores.images.read(environment, tolerant=True)
        pointer, unreadable = _pointer(stores, environment)
    differences = _ssm_differences(held, deployed)
    notes += _removals(stores, environment, differences)
    differences += _pointer_differences(pointer, unreadable, deployed)
    checked = ["ssm", "pointer"]
    if deployed is None:
        notes.append(f"nothing is deployed to {environment}: there is no record to compare with")
        return Verification(
            environment, None, tuple(differences), tuple(checked), state.lock, tuple(notes)
        )
    with stores.progress.step("looking up the deployed images in their registries"):
        differences += _expired(stores, deployed)
    checked.append("ecr")
    if any(
        naming.parse_ecr(url) is None and stores.config.checks(url)
        for url in deployed.held.values()
    ):
        checked.append("registry")
    failed = None
    if terraform is not None:
        try:
            with stores.progress.step(f"terraform plan of {environment} (read only)"):
                differences += _terraform_differences(terraform.drift())
            checked.append("terraform")
        except TerraformFailed as error:  # what SSM and ECR showed still counts
            failed = str(error)
    if ecs:
        with stores.progress.step(f"describing {len(env.ecs_services)} ECS service(s)"):
            ecs_of = stores.ecs_of(environment)
            differences += _ecs_differences(ecs_of, env.ecs_services, deployed)
        checked.append("ecs")
    return Verification(
        environment,
        deployed.version,
        tuple(differences),
        tuple(checked),
        state.lock,
        tuple(notes),
        failed,
    )


def _pointer(stores: Stores, environment: str) -> tuple[ReleasePointer | None, str | None]:
    """The version pointer, or why it cannot be read (a hand-written value is a difference)."""
    try:
        return stores.images.read_pointer(environment), None
    except BadInput as error:
        return None, str(error)


def _removals(stores: Stores, environment: str, differences: list[Difference]) -> list[str]:
    """How to remove parameters nobody released: a deploy writes and deletes only the images
    of its manifests (and those a deploy before it wrote), so one added by hand stays."""
    names = [
        naming.image_parameter(stores.config.project, environment, d.subject)
        for d in differences
        if d.kind == "extra"
    ]
    if not names:
        return []
    return [
        "a deploy never deletes a parameter no release wrote: remove "
        f"{'it' if len(names) == 1 else 'them'} with `aws ssm delete-parameters --names "
        f"{' '.join(names)}`, or publish the image and release it"
    ]


def _ssm_differences(held: Mapping[str, str], deployed: Deployed | None) -> list[Difference]:
    images = deployed.held if deployed else {}  # what SSM should hold: pinned, if it was
    version = naming.format_version(deployed.version) if deployed else "nothing deployed"
    found = []
    for name in sorted(held.keys() | images.keys()):
        url, wanted = held.get(name), images.get(name)
        if url == wanted:
            continue
        if wanted is None:
            what = "in SSM" if deployed else "in SSM, though nothing is deployed"
            where = f", not in {version}" if deployed else ""
            found.append(Difference("extra", name, f"{what}{where}: {_shown(url)}"))
        elif url is None:
            found.append(Difference("missing", name, f"missing from SSM ({version} has {wanted})"))
        else:
            found.append(
                Difference("changed", name, f"SSM holds {_shown(url)}, {version} has {wanted}")
            )
    return found


def _shown(url: str | None) -> str:
    """An SSM value as it is, flagged when it is no image URL (written by hand)."""
    try:
        return naming.check_image_url(url or "")
    except BadInput:
        return f"{url!r} (not a valid image URL)"


def _pointer_differences(
    pointer: ReleasePointer | None, unreadable: str | None, deployed: Deployed | None
) -> list[Difference]:
    subject = "release_version"
    if unreadable is not None:
        return [Difference("pointer", subject, unreadable)]
    if deployed is None:
        if pointer is None:
            return []
        held = naming.format_version(pointer.version)
        return [Difference("pointer", subject, f"SSM says {held}, though nothing is deployed")]
    version = naming.format_version(deployed.version)
    wanted = ReleasePointer(deployed.version, len(deployed.images))
    if pointer is None:
        return [Difference("pointer", subject, f"missing from SSM ({version} is deployed)")]
    if pointer == wanted:
        return []
    return [
        Difference(
            "pointer",
            subject,
            f"SSM says {naming.format_version(pointer.version)} with {pointer.images} image(s), "
            f"{version} has {wanted.images}",
        )
    ]


def _expired(stores: Stores, deployed: Deployed) -> list[Difference]:
    """Deployed images their registry no longer has: a rollback or a scale-out to them would
    fail. (A registry configured `check = false` is not asked.)"""
    gone = set(stores.registry.missing(deployed.held.values()))
    return [
        Difference(
            "ecr" if naming.parse_ecr(url) else "registry",
            name,
            f"{url} no longer exists in {naming.registry_of(url)}",
        )
        for name, url in sorted(deployed.held.items())
        if url in gone
    ]


def _terraform_differences(plan: PlanSummary) -> list[Difference]:
    found = []
    for resource in plan.resources:  # "ADDRESS (ACTION)"
        address, _, action = resource.rpartition(" (")
        found.append(Difference("terraform", address, action.rstrip(")")))
    return found


def _ecs_differences(
    ecs: EcsServices, services: tuple[str, ...], deployed: Deployed
) -> list[Difference]:
    """What each service runs now, with no waiting: a rollout still going on is a difference."""
    described = ecs.describe(services)
    found = []
    for service in dict.fromkeys(services):
        description = described[service]
        task_definition = description.get("taskDefinition", "")
        running = ecs.images(task_definition) if task_definition else {}
        runs = runs_of(task_definition, running)
        rollout = rollout_of(description)
        if rollout.waiting:
            problem: str | None = f"still rolling out ({rollout.detail})"
        elif rollout.failed:
            problem = rollout.detail
        else:
            problem = image_problem(running, deployed.held)
        if problem is not None:
            found.append(Difference("ecs", service, f"{problem}; runs {runs}"))
    return found
