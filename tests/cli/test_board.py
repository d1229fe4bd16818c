"""`tf-release board`: one self-contained page of the whole project, looked at by a real browser.

The scenes are set in-process (moto); the console script runs against the moto server."""

import os
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tests.conftest import Cli
from tests.support.browser import colours, find_browser, render
from tests.support.project import BUCKET, CONFIG, PROJECT, REGION
from tests.support.scenes import (
    SCRIPTED_REASON,
    died_holding_the_lock,
    released,
    six_weeks_of_releases,
)
from tf_release import board, files, naming, views
from tf_release.config import load_config
from tf_release.errors import BadInput
from tf_release.state import Deployment, Override
from tf_release.stores import Stores, open_stores

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
Boards = dict[int, board.Board]  # by the days they go back


@pytest.fixture(scope="module")
def six_weeks(tmp_path_factory: pytest.TempPathFactory) -> Boards:
    """The board of `six_weeks_of_releases` over 30 and 5 days, gathered once for the module
    (a dozen deploys in moto take seconds); the tests only look."""
    config = tmp_path_factory.mktemp("six-weeks") / "tf-release.toml"
    config.write_text(CONFIG)
    with pytest.MonkeyPatch.context() as patch, mock_aws():
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            patch.delenv(name)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        stores = open_stores(load_config(config))
        six_weeks_of_releases(stores, NOW)
        return {days: board.gather(stores, days) for days in (30, 5)}


def cells(page: board.Board) -> dict[tuple[str, str], board.Cell]:
    """(image, environment) → cell."""
    names = [card.environment for card in page.cards]
    return {
        (row.image, name): cell
        for row in page.rows
        for name, cell in zip(names, row.cells, strict=True)
    }


def test_environments_stand_in_promotion_order_whatever_the_file_says(tmp_path: Path) -> None:
    path = tmp_path / "tf-release.toml"
    path.write_text(
        'project = "p"\nbucket = "bucket"\n'
        '[environments.prod]\npromote_from = "stage"\n'
        '[environments.qa]\npromote_from = "latest"\n'
        '[environments.stage]\npromote_from = "qa"\n'
        '[environments.preview]\npromote_from = "latest"\n'
    )
    assert board.promotion_order(load_config(path)) == ["qa", "preview", "stage", "prod"]


def test_each_card_says_what_runs_when_who_and_why(six_weeks: Boards) -> None:
    stage, prod = six_weeks[30].cards
    assert prod.deployed is not None and prod.deployed.version == 3
    assert prod.deployed.finished_at == NOW - timedelta(days=9)
    assert naming.person(prod.deployed.by) == "bob"
    assert prod.reason == "api 1.0.1 errors in prod"
    assert prod.attempt is None and prod.lock is None
    assert stage.deployed is not None and stage.reason == "api fix, worker 1.1, web"


def test_a_card_shows_the_last_failed_attempt_and_the_manifest_waiting(six_weeks: Boards) -> None:
    stage, _ = six_weeks[30].cards
    assert stage.attempt is not None
    assert (stage.attempt.version, stage.attempt.outcome) == (3, "failed")
    assert stage.attempt.message == "terraform apply failed (exit 1): Error: quota"
    assert stage.pending == 3


def test_a_locked_environment_names_who_holds_the_lock(stores: Stores) -> None:
    died_holding_the_lock(stores)
    stage, _ = board.gather(stores).cards
    assert stage.lock is not None and "started deploying v2" in stage.lock
    html = board.render(board.gather(stores))
    assert "Locked" in html and "stage is locked" in html  # the card, and the timeline's ring


def test_cells_that_differ_from_the_environment_promoted_from_are_highlighted(
    six_weeks: Boards,
) -> None:
    """What stage has that prod lacks: api and worker newer, web missing; cron the same."""
    found = cells(six_weeks[30])
    assert {key for key, cell in found.items() if cell.differs} == {
        ("api", "prod"),
        ("web", "prod"),
        ("worker", "prod"),
    }
    assert (found["api", "stage"].text, found["api", "prod"].text) == ("1.0.1", "1.0.0")
    assert found["web", "prod"].text == "—"
    assert "stage runs registry.example.com/catalogue/web:1.0.0" in found["web", "prod"].title


def test_a_cell_shows_the_tag_or_else_the_short_digest() -> None:
    digest = "sha256:" + "ab" * 32
    assert board.short_reference("registry.example.com/api:1.4") == "1.4"
    assert board.short_reference(f"registry.example.com/api:1.4 ({digest[:13]}…)") == "1.4"
    assert board.short_reference(f"registry.example.com:5000/api@{digest}") == "sha256:ababab…"


def test_the_timeline_holds_the_deployments_of_the_last_days_only(six_weeks: Boards) -> None:
    month = six_weeks[30]
    assert [(m.environment, m.version, m.outcome) for m in month.marks] == [
        ("stage", 3, "failed"),
        ("prod", 3, "succeeded"),
        ("prod", 2, "succeeded"),
        ("stage", 2, "succeeded"),
    ]
    failed = month.marks[0]
    assert (naming.person(failed.by), failed.reason) == ("carol", SCRIPTED_REASON)
    assert [m.version for m in six_weeks[5].marks] == [3]


def test_marks_of_one_busy_hour_stay_apart_in_order() -> None:
    deployed = [
        board.Mark("stage", n, "succeeded", NOW - timedelta(minutes=10 - n), "a", "r")
        for n in range(1, 6)
    ]
    lane = (board.Card("stage", "latest", None),)
    page = board.Board("p", NOW, 30, lane, (), tuple(reversed(deployed)))
    xs = [placed.x for placed in board.timeline(page).marks]  # newest first
    assert all(newer - older >= board.GAP for newer, older in pairwise(xs))
    assert xs[0] <= board.WIDTH - board.RIGHT


def test_rules_a_deploy_went_past_are_shown_with_who_and_why() -> None:
    alice = "arn:aws:iam::123456789012:user/alice"
    record = Deployment(
        "p", "prod", "d1", 4, "succeeded", NOW, NOW, alice, "host", 3,
        overrides=(Override("freeze", "hotfix for checkout", alice),),
    )  # fmt: skip
    assert board.overrides_of(record) == ("freeze overridden by alice: hotfix for checkout",)
    assert board.overrides_of(replace(record, overrides=())) == ()


def test_a_marks_hover_has_a_line_for_each_fact(six_weeks: Boards) -> None:
    mark = board.Mark(
        "prod", 4, "succeeded", NOW, "arn:aws:iam::123456789012:user/alice", "api 1.2",
        overrides=("freeze overridden by alice: hotfix",),
    )  # fmt: skip
    assert mark.hover.splitlines() == [
        f"prod v4: succeeded at {naming.format_minute(NOW)} by alice",
        "api 1.2",
        "override: freeze overridden by alice: hotfix",
    ]
    assert f"<title>{mark.hover}</title>" in board.render(replace(six_weeks[30], marks=(mark,)))


def test_every_value_is_escaped(six_weeks: Boards) -> None:
    html = board.render(six_weeks[30])
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt; &amp; more" in html


def test_the_page_loads_nothing_from_elsewhere(six_weeks: Boards) -> None:
    html = board.render(six_weeks[30])
    assert "default-src 'none'" in html  # the browser refuses any fetch, and says so
    assert not re.search(r"""(src|href)=|@import|url\(""", html)


def test_an_empty_project_gets_a_nothing_deployed_yet_page(stores: Stores) -> None:
    page = board.gather(stores)
    assert page.empty
    html = board.render(page)
    assert "Nothing deployed yet" in html
    assert "tf-release apply --env stage" in html


def test_the_window_is_a_day_to_a_year(stores: Stores) -> None:
    for days in (0, 367):
        with pytest.raises(BadInput, match="--days must be between 1 and 366"):
            board.gather(stores, days)


# A real browser: both widths, each in one colour scheme (a Chromium run is about a second).


def browser_or_skip() -> None:
    if find_browser() is not None:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail("no Chromium, though it can be installed here: apt-get install -y chromium")
    pytest.skip("no Chromium and no way to install it (not root, or no apt-get)")


@pytest.mark.parametrize("width,dark", [(1280, False), (390, True)], ids=["1280-light", "390-dark"])
def test_a_browser_draws_the_board_without_console_errors(
    six_weeks: Boards, tmp_path: Path, width: int, dark: bool
) -> None:
    browser_or_skip()
    page = tmp_path / "release-board.html"
    files.write_whole(page, board.render(six_weeks[30]))
    shot = render(page, width, 900, dark=dark)
    assert shot.console == []  # no error, and no load the page's policy had to refuse
    found = colours(shot.png)
    assert len(found) > 50, "a blank page"
    background = max(found, key=lambda colour: found[colour])
    assert (sum(background) < 150) if dark else (sum(background) > 600), background


# The console script against the moto server.


def test_the_board_command_writes_the_page_and_says_what_is_on_it(cli: Cli) -> None:
    released(cli.stores())
    out = cli.ok("board", "--output", "board.html", "--days", "7")
    assert out == "Wrote board.html: 2 environments, 1 deployments (last 7 days).\n"
    html = (cli.cwd / "board.html").read_text()
    assert f"<h1>{PROJECT}</h1>" in html and "registry.example.com" in html


def test_the_board_of_an_empty_project_says_nothing_is_deployed(cli: Cli) -> None:
    out = cli.ok("board")
    assert "nothing deployed yet" in out
    assert "Nothing deployed yet" in (cli.cwd / "release-board.html").read_text()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--days", "0"], "--days must be between 1 and 366, not 0"),
        (["--output", "no/such/folder/board.html"], "the folder no/such/folder does not exist"),
        (["--output", "."], "cannot write .: it is a folder"),
    ],
)
def test_bad_board_input_is_one_line_and_writes_nothing(
    cli: Cli, args: list[str], message: str
) -> None:
    result = cli.run("board", *args)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert message in line
    assert not list(cli.cwd.glob("*.html")) and not list(cli.cwd.glob(".*.draft"))


def test_marks_keep_their_time_order_across_lanes() -> None:
    """A lane's burst spreads around its true times: stage v2 (13:00) stays right of prod v1
    (12:30), and stage v1 (10:00) is not pushed a day or more early."""
    day = datetime(2026, 3, 24, tzinfo=UTC)
    deployed = [
        board.Mark("stage", 1, "succeeded", day + timedelta(hours=10), "a", "r"),
        board.Mark("prod", 1, "succeeded", day + timedelta(hours=12, minutes=30), "a", "r"),
        board.Mark("stage", 2, "succeeded", day + timedelta(hours=13), "a", "r"),
        board.Mark("stage", 3, "failed", day + timedelta(hours=15), "a", "r"),
    ]
    lanes = (board.Card("stage", "latest", None), board.Card("prod", "stage", None))
    page = board.Board("p", day + timedelta(days=2), 30, lanes, (), tuple(reversed(deployed)))
    x = {(p.mark.environment, p.mark.version): p.x for p in board.timeline(page).marks}
    assert x["stage", 1] < x["prod", 1] < x["stage", 2] < x["stage", 3]
    per_hour = (board.WIDTH - board.RIGHT - board.LEFT) / (30 * 24)
    assert (x["prod", 1] - x["stage", 1]) / per_hour < 24  # less than a day early
    assert x["stage", 3] - x["stage", 2] >= board.GAP


def test_a_mark_with_room_stays_put_and_two_close_ones_share_the_nudge() -> None:
    lone = board.Mark("stage", 1, "succeeded", NOW - timedelta(days=15), "a", "r")
    pair = [
        board.Mark("stage", n, "succeeded", NOW - timedelta(days=5, minutes=10 * n), "a", "r")
        for n in (2, 3)
    ]
    page = board.Board("p", NOW, 30, (board.Card("stage", "latest", None),), (), (*pair, lone))
    x = {placed.mark.version: placed.x for placed in board.timeline(page).marks}
    middle = (board.LEFT + board.WIDTH - board.RIGHT) / 2
    assert abs(x[1] - middle) <= 0.5
    true = middle + (board.WIDTH - board.RIGHT - board.LEFT) * 10 / 30
    assert x[2] - x[3] == board.GAP
    assert abs((x[2] + x[3]) / 2 - true) <= 1  # the pair's middle: each moved half the gap


def broken_prod(cli: Cli) -> str:
    """stage runs v1; prod's state is overwritten with `{}`. The problem status names."""
    released(cli.stores())
    key = f"{PROJECT}/environments/prod/state.json"
    cli.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    [prod] = [item for item in views.status(cli.stores()) if item.environment == "prod"]
    assert prod.problem is not None
    return prod.problem


def test_a_broken_state_makes_its_cells_unknown_not_empty(cli: Cli) -> None:
    problem = broken_prod(cli)
    found = cells(board.gather(cli.stores()))
    for image in ("api", "worker"):
        assert found[image, "prod"].text == "?"
        assert found[image, "prod"].title == f"unknown: {problem}"
        assert not found[image, "prod"].differs


def test_the_board_with_a_broken_state_writes_the_page_then_fails_in_a_line(cli: Cli) -> None:
    problem = broken_prod(cli)
    result = cli.run("board")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"tf-release: error: {problem.splitlines()[0]}"]
    assert result.stdout.startswith("Wrote release-board.html: 2 environments")
    html = (cli.cwd / "release-board.html").read_text()
    assert "does not run" not in html
    assert html.count('title="unknown: the state of prod is broken') == 2
    assert 'class="note problem">the state of prod is broken' in html


def test_a_broken_state_keeps_its_deployments_on_the_timeline_and_says_what_is_unknown(
    cli: Cli,
) -> None:
    """stage runs v1 and its state breaks; prod runs nothing: stage's deploy is still on the
    timeline (its record says so), and the images are unknown, not "no release yet"."""
    stores = cli.stores()
    released(stores)
    key = f"{PROJECT}/environments/stage/state.json"
    cli.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    page = board.gather(stores)
    assert [(mark.environment, mark.version) for mark in page.marks] == [("stage", 1)]
    html = board.render(page)
    assert "No environment runs a release yet" not in html
    assert "What stage runs is unknown: its state cannot be read." in html


def test_a_board_drawn_at_a_past_time_shows_no_later_deployment(stores: Stores) -> None:
    released(stores)
    stores.clock = lambda: datetime(2020, 1, 1, tzinfo=UTC)
    assert board.gather(stores).marks == ()


def test_the_board_goes_to_stdout_with_output_dash(cli: Cli) -> None:
    released(cli.stores())
    page = cli.ok("board", "--output", "-")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert f"<h1>{PROJECT}</h1>" in page
    assert not (cli.cwd / "-").exists() and not list(cli.cwd.glob(".*.draft"))
