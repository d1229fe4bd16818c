"""`tf-release retire IMAGE`: an image leaves `latest`, and the next promotion removes it."""

from functools import partial

from tests.conftest import Cli
from tests.support.processes import answer_prompt
from tests.support.project import image

API = "/catalogue/image_ids/latest/api"


def published(cli: Cli) -> Cli:
    """stage runs api and worker from latest (v1)."""
    for name in ("api", "worker"):
        cli.ok("publish", name, image(name, "one"))
    cli.ok("apply", "-e", "stage", "-r", "first", "--yes")
    return cli


def in_latest(cli: Cli) -> list[str]:
    parameters = cli.client("ssm").get_parameters_by_path(Path="/catalogue/image_ids/latest")
    return sorted(p["Name"].rsplit("/", 1)[-1] for p in parameters["Parameters"])


def test_a_retired_image_is_removed_by_the_next_promotion(cli: Cli) -> None:
    published(cli)
    out = cli.ok("retire", "api", "--yes")
    assert out == (
        f"Removed api from latest (was {image('api', 'one')}); "
        "the next `prepare --env stage` removes it.\n"
    )
    assert in_latest(cli) == ["worker"]
    assert f"  - api: {image('api', 'one')}" in cli.ok("diff", "--env", "stage").splitlines()
    prepared = cli.ok("prepare", "--env", "stage", "--reason", "api retired").splitlines()
    assert prepared == [
        "Prepared v2 for stage:",
        f"  - api: {image('api', 'one')}",
        "  (1 unchanged)",
    ]


def test_without_a_terminal_or_yes_retire_refuses_and_removes_nothing(cli: Cli) -> None:
    published(cli)
    refused = cli.run("retire", "api")
    assert refused.returncode == 2
    assert (
        refused.stderr == "tf-release: error: no terminal to confirm on: pass --yes to retire api\n"
    )
    assert in_latest(cli) == ["api", "worker"]


def test_retiring_an_image_not_in_latest_is_bad_input(cli: Cli) -> None:
    published(cli)
    refused = cli.run("retire", "search", "--yes")
    assert refused.returncode == 2
    assert refused.stderr == (
        "tf-release: error: no image search in /catalogue/image_ids/latest: nothing to retire\n"
    )
    assert in_latest(cli) == ["api", "worker"]


def answer(cli: Cli, reply: bytes) -> tuple[int, str]:
    """`retire api` on a terminal, answering its question with `reply`."""
    code, seen, err = answer_prompt(
        partial(cli.start, "retire", "api"), b"Remove api from latest? [y/N]", reply
    )
    assert f"latest has api = {image('api', 'one')}".encode() in seen
    return code, err.strip()  # input() echoes the prompt's last space on stderr


def test_on_a_terminal_retire_asks_first(cli: Cli) -> None:
    published(cli)
    code, err = answer(cli, b"n\n")
    assert (code, err) == (1, "tf-release: error: api left in latest")
    assert in_latest(cli) == ["api", "worker"]
    code, err = answer(cli, b"y\n")
    assert (code, err) == (0, "")
    assert in_latest(cli) == ["worker"]
