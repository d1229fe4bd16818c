from pathlib import Path

import pytest

from tf_release.model.config import find_config, load_config
from tf_release.model.errors import BadInput


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tf-release.toml"
    path.write_text(text)
    return path


def test_a_full_config_loads(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
project = "catalogue"
bucket = "acme-releases"
region = "eu-west-1"
images = ["api", "worker"]

[environments.stage]
promote_from = "latest"
terraform_dir = "infra/stage"

[environments.prod]
promote_from = "stage"
""",
        )
    )
    assert config.project == "catalogue"
    assert config.images == ("api", "worker")
    assert config.environment("stage").terraform_dir == tmp_path / "infra/stage"
    assert config.environment("prod").terraform_dir is None


def test_the_config_is_found_in_a_parent_folder(tmp_path: Path) -> None:
    path = write(tmp_path, 'project = "p"\nbucket = "bucket"\n')
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    assert find_config(start=nested) == path


def test_a_missing_config_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"no tf-release\.toml"):
        find_config(start=tmp_path)


@pytest.mark.parametrize(
    "text,message",
    [
        ('bucket = "b-b"\n', "'project' is a required property"),
        ('project = "p"\nbucket = "b-b"\ncolour = "red"\n', "'colour' was unexpected"),
        ('project = 5\nbucket = "b-b"\n', "project: 5 is not of type 'string'"),
        (
            'project = "p"\nbucket = "b-b"\n[environments.stage]\npromote_from = 3\n',
            "environments.stage.promote_from: 3 is not of type 'string'",
        ),
        (
            'project = "p"\nbucket = "b-b"\n[environments.stage]\npromote_from = "qa"\n',
            "neither 'latest' nor a configured environment",
        ),
        ('project = "p"\nbucket = "b-b"\nimages = ["API"]\n', "images.0"),
        ("project = \n", "not valid TOML"),
        (
            'project = "p"\nbucket = "b-b"\n[environments.stage]\npromote_from = "latest"\n'
            'role_arn = "arn:aws:iam::12:user/alice"\n',
            "invalid role ARN 'arn:aws:iam::12:user/alice'",
        ),
    ],
)
def test_an_invalid_config_names_the_file_the_key_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as raised:
        load_config(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_unknown_environments_are_named_with_the_known_ones(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            'project = "p"\nbucket = "b-b"\n[environments.stage]\npromote_from = "latest"\n',
        )
    )
    with pytest.raises(BadInput, match=r"unknown environment 'qa' \(configured: stage\)"):
        config.environment("qa")


@pytest.mark.parametrize("folder", ["../infra", "/etc", "infra/../../elsewhere"])
def test_terraform_paths_must_stay_inside_the_project(tmp_path: Path, folder: str) -> None:
    path = write(
        tmp_path,
        f'project = "p"\nbucket = "b-b"\n[environments.stage]\npromote_from = "latest"\n'
        f'terraform_dir = "{folder}"\n',
    )
    with pytest.raises(BadInput, match="is outside the project folder"):
        load_config(path)


STAGE = 'project = "p"\nbucket = "b-b"\n[environments.stage]\npromote_from = "latest"\n'


def test_ecs_services_and_their_timeout_load(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, STAGE + 'ecs_services = ["main/api", "main/worker"]\necs_timeout = 600\n')
    )
    assert config.environment("stage").ecs_services == ("main/api", "main/worker")
    assert config.environment("stage").ecs_timeout == 600


def test_without_ecs_services_nothing_is_checked_and_the_timeout_is_fifteen_minutes(
    tmp_path: Path,
) -> None:
    stage = load_config(write(tmp_path, STAGE)).environment("stage")
    assert stage.ecs_services == ()
    assert stage.ecs_timeout == 900


@pytest.mark.parametrize(
    "lines,key",
    [
        ('ecs_services = ["api"]', "environments.stage.ecs_services.0"),
        ('ecs_services = ["main/api/extra"]', "environments.stage.ecs_services.0"),
        ('ecs_services = ["main/api v2"]', "environments.stage.ecs_services.0"),
        ('ecs_services = ["main/api", "main/api"]', "environments.stage.ecs_services"),
        ('ecs_services = "main/api"', "environments.stage.ecs_services"),
        ("ecs_timeout = 0", "environments.stage.ecs_timeout"),
        ("ecs_timeout = -5", "environments.stage.ecs_timeout"),
        ('ecs_timeout = "15m"', "environments.stage.ecs_timeout"),
        ("ecs_timeout = inf", "environments.stage.ecs_timeout"),
        ("ecs_timeout = nan", "environments.stage.ecs_timeout"),
    ],
)
def test_bad_ecs_settings_are_refused_in_one_line_naming_the_key(
    tmp_path: Path, lines: str, key: str
) -> None:
    path = write(tmp_path, STAGE + lines + "\n")
    with pytest.raises(BadInput) as raised:
        load_config(path)
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert message.startswith(f"{path}: {key}: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    "text,message",
    [
        (
            'project = "p"\nbucket = "b-b"\n'
            '[environments.stage]\npromote_from = "prod"\n'
            '[environments.prod]\npromote_from = "stage"\n',
            "environments.stage.promote_from: stage promotes from prod, which promotes from stage "
            '(a cycle): the first environment must promote from "latest"',
        ),
        (
            'project = "p"\nbucket = "b-b"\n'
            '[environments.qa]\npromote_from = "stage"\n'
            '[environments.stage]\npromote_from = "prod"\n'
            '[environments.prod]\npromote_from = "stage"\n',
            "environments.stage.promote_from: stage promotes from prod, which promotes from stage "
            "(a cycle)",
        ),
        (
            'project = "p"\nbucket = "b-b"\n',
            'no environments: add an [environments.stage] table with promote_from = "latest"',
        ),
        (
            'project = "p"\nbucket = "b-b"\nenvironments = {}\n',
            'no environments: add an [environments.stage] table with promote_from = "latest"',
        ),
        (
            'project = "p"\nbucket = "b-b"\n[environments.latest]\npromote_from = "x"\n',
            "environments: `latest` is the label CI publishes to, not an environment name: "
            "rename [environments.latest]",
        ),
        (
            'project = "a b"\nbucket = "b-b"\n[environments.stage]\npromote_from = "latest"\n',
            "project: invalid project name 'a b': use letters, digits, '.', '_' and '-'",
        ),
        (
            'project = "p"\nbucket = "b-b"\n[environments.stage]\npromote_from = "latest"\n'
            'terraform_dir = "infra"\nbackend_config = { key = "stage.tfstate" }\n'
            '[environments.prod]\npromote_from = "stage"\nterraform_dir = "infra"\n'
            'backend_config = { key = "prod.tfstate" }\n',
            "environments stage and prod share terraform_dir ",
        ),
    ],
    ids=[
        "cycle",
        "cycle-behind-another",
        "no-environments",
        "empty-environments",
        "latest",
        "project",
        "one-folder-two-backends",
    ],
)
def test_config_mistakes_are_refused_in_a_sentence_naming_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as raised:
        load_config(path)
    assert str(raised.value).startswith(f"{path}: {message}")
    assert "\n" not in str(raised.value) and "valid under" not in str(raised.value)


def test_init_writes_the_release_rules_of_the_last_environment_commented_out(
    tmp_path: Path,
) -> None:
    from datetime import timedelta

    from tf_release.model.config import starter_config

    text = starter_config("catalogue", "acme-releases", ["stage", "prod"])
    prod = text.split("[environments.prod]", 1)[1]
    assert "# soak" in prod and "# freeze" in prod and "# timezone" in prod
    assert "soak" not in text.split("[environments.prod]", 1)[0]
    rules = ("# soak", "# freeze", "# timezone")
    uncommented = "\n".join(
        line[2:] if line.startswith(rules) else line for line in text.splitlines()
    )
    path = tmp_path / "tf-release.toml"
    path.write_text(uncommented)
    loaded = load_config(path).environments["prod"].rules
    assert loaded.soak == timedelta(hours=2) and len(loaded.freeze) == 2
    assert loaded.timezone == "Europe/London"


def test_a_relative_terraform_bin_is_relative_to_the_config_files_folder(tmp_path: Path) -> None:
    """Terraform runs in terraform_dir: a path left relative would name another file there."""
    text = 'project = "p"\nbucket = "b-b"\nterraform_bin = "{}"\n' + STAGE.split("\n", 2)[2]
    assert load_config(write(tmp_path, text.format("bin/terraform"))).terraform_bin == str(
        tmp_path / "bin" / "terraform"
    )
    assert load_config(write(tmp_path, text.format("terraform-1.9"))).terraform_bin == (
        "terraform-1.9"  # a name: looked up on PATH
    )
    assert load_config(write(tmp_path, text.format("/opt/tf/terraform"))).terraform_bin == (
        "/opt/tf/terraform"
    )
