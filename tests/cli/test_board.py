"""`tf-release board`: one self-contained page of the whole project, looked at by a real browser.

The scenes are set in-process (moto); the console script runs against the moto server."""

import os
import random
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
from tf_release.faces import board
from tf_release.flows import views
from tf_release.model import files, naming
from tf_release.model.config import load_config
from tf_release.model.errors import BadInput
from tf_release.model.state import Deployment, Override
from tf_release.stores.bundle import Stores, open_stores

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
Boards = dict[int, board.Board]  # by the days they go back
RIGHT_END = board.WIDTH - board.RIGHT  # "now" on the timeline


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


def mark(version: int, at: datetime, outcome: str = "succeeded", env: str = "stage") -> board.Mark:
    return board.Mark(env, version, outcome, at, "a", f"reason {version}")


def page_of(
    marks: list[board.Mark], days: int = 30, envs: tuple[str, ...] = ("stage",)
) -> board.Board:
    newest_first = tuple(sorted(marks, key=lambda m: m.finished_at, reverse=True))
    cards = tuple(board.Card(env, "latest", None) for env in envs)
    return board.Board("p", NOW, days, cards, (), newest_first)


def lane_of(marks: list[board.Mark], days: int = 30) -> board.Timeline:
    return board.timeline(page_of(marks, days))


def true_x(page: board.Board, moment: datetime) -> float:
    share = (moment - page.since) / (page.generated_at - page.since)
    return board.LEFT + share * (RIGHT_END - board.LEFT)


def drawn_x(line: board.Timeline) -> dict[tuple[str, int], float]:
    """Where each deployment is drawn: its mark, or its time's place in its cluster's bar."""
    found = {(p.mark.environment, p.mark.version): p.x for p in line.marks}
    for cluster in line.clusters:
        first, last = cluster.marks[-1].finished_at, cluster.marks[0].finished_at
        per_second = (cluster.x2 - cluster.x1) / max((last - first).total_seconds(), 1)
        for m in cluster.marks:
            at = cluster.x1 + (m.finished_at - first).total_seconds() * per_second
            found[m.environment, m.version] = at
    return found


def test_marks_of_one_busy_hour_stay_apart_in_order() -> None:
    """Three deploys in a few minutes a day ago are nudged apart, in order. Five just now would
    have to reach back 4 GAP (three days of a month) to stand apart: they are one cluster at
    their time, not past "now"."""
    earlier = lane_of(
        [mark(n, NOW - timedelta(days=1, minutes=10 - n)) for n in range(1, 4)], days=30
    )
    xs = [placed.x for placed in earlier.marks]  # newest first
    assert len(xs) == 3 and not earlier.clusters
    assert all(newer - older >= board.GAP for newer, older in pairwise(xs))
    just_now = lane_of([mark(n, NOW - timedelta(minutes=10 - n)) for n in range(1, 6)], days=30)
    [cluster] = just_now.clusters
    assert not just_now.marks and cluster.label == "v1\u2013v5 \u00d75"
    assert RIGHT_END - 1 <= cluster.x1 <= cluster.x2 <= RIGHT_END


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


def test_sixteen_deploys_within_25_minutes_are_one_cluster_at_their_time() -> None:
    """The tester's month: stage v1-v4 days apart, then v5-v20 within 25 minutes ten days ago,
    prod deploying six hours before and a day after. The burst was 16 marks 24 px apart (360 px,
    twelve days); now it is one cluster over its true 25 minutes (a pixel), the rest in place."""
    begin = NOW - timedelta(days=10)
    burst = [mark(v, begin + timedelta(seconds=100 * (v - 5))) for v in range(5, 21)]
    alone = [mark(v, NOW - timedelta(days=d)) for v, d in ((1, 27), (2, 21), (3, 16), (4, 13))]
    prod = [
        mark(1, begin - timedelta(hours=6), env="prod"),
        mark(2, begin + timedelta(days=1), env="prod"),
    ]
    page = page_of([*alone, *burst, *prod], envs=("stage", "prod"))
    line = board.timeline(page)
    [cluster] = line.clusters
    assert [m.version for m in cluster.marks] == list(range(20, 4, -1))  # newest first
    assert cluster.label == "v5\u2013v20 \u00d716"
    first, last = true_x(page, burst[0].finished_at), true_x(page, burst[-1].finished_at)
    assert last - first < 1
    assert abs(cluster.x - (first + last) / 2) <= board.GAP
    assert first - 1 <= cluster.x1 <= cluster.x2 <= last + 1  # nothing of it days away
    x = drawn_x(line)
    for m in [*alone, *prod]:
        assert abs(x[m.environment, m.version] - true_x(page, m.finished_at)) <= 0.5
    assert x["prod", 1] < cluster.x1 <= cluster.x2 < x["prod", 2]  # time order across lanes


def test_three_deploys_at_one_moment_are_nudged_apart_four_are_one_cluster() -> None:
    """Three at one moment are GAP apart, the outer ones GAP from their time; four would move
    the outer ones 1.5 GAP, so they are one cluster."""
    at = NOW - timedelta(days=15)  # the middle of the month: x 533
    three = lane_of([mark(v, at + timedelta(seconds=v)) for v in range(1, 4)])
    assert not three.clusters
    assert [placed.x for placed in three.marks] == [557, 533, 509]
    four = lane_of([mark(v, at + timedelta(seconds=v)) for v in range(1, 5)])
    [cluster] = four.clusters
    assert not four.marks and abs(cluster.x - 533) <= 0.5


def test_a_clusters_hover_lists_its_deploys_and_it_takes_the_worst_colour() -> None:
    begin = NOW - timedelta(days=10)
    burst = [mark(v, begin + timedelta(seconds=100 * v)) for v in range(1, 17)]
    carol = "arn:aws:iam::123456789012:user/carol"
    error = "terraform apply failed (exit 1): Error: quota"
    burst[6] = replace(burst[6], outcome="failed", by=carol, message=error)
    [cluster] = lane_of(burst).clusters
    assert cluster.outcome == "failed"

    def minute(m: board.Mark) -> str:
        return naming.format_minute(m.finished_at)

    head, *lines = cluster.hover.splitlines()
    assert head == (
        f"stage v1\u2013v16: 16 deployments from {minute(burst[0])} to {minute(burst[-1])} "
        "(15 succeeded, 1 failed)"
    )
    assert lines[9] == f"v7: failed at {minute(burst[6])} by carol: reason 7 \u2014 {error}"
    assert [line for n, line in enumerate(lines) if n != 9] == [
        f"v{m.version}: succeeded at {minute(m)} by a: reason {m.version}"
        for m in reversed(burst)
        if m.version != 7
    ]
    many = [mark(v, begin + timedelta(seconds=30 * v)) for v in range(1, 31)]
    [crowd] = lane_of(many).clusters
    head, *lines = crowd.hover.splitlines()
    assert head.startswith("stage v1\u2013v30: 30 deployments from")
    assert [line.split(":")[0] for line in lines[:-1]] == [f"v{v}" for v in range(30, 10, -1)]
    assert lines[-1] == "\u2026 and 10 more"


def test_a_cluster_is_drawn_escaped_and_its_deploys_are_all_in_the_list() -> None:
    begin = NOW - timedelta(days=10)
    burst = [mark(v, begin + timedelta(seconds=100 * v)) for v in range(1, 17)]
    burst[3] = replace(burst[3], reason='<script>alert("reason")</script> & more')
    page = page_of(burst)
    [cluster] = board.timeline(page).clusters
    html = board.render(page)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt; &amp; more" in html
    left, width = cluster.bar
    assert f'class="succeeded cluster" x="{left}" y="{cluster.y - 3}" width="{width}"' in html
    assert f"<title>{cluster.hover}</title>".split("\n")[0] in html
    assert ">v1\u2013v16 \u00d716</text>" in html
    assert html.count("<li>") == 16  # the list below the timeline: every deployment
    assert "hover for each" in html  # the legend says what a bar is


def test_a_crowded_month_draws_each_deploy_near_its_time_and_nothing_over_another() -> None:
    """Bursts of 1 to 12 deploys, a minute to hours apart, at random over two lanes: every
    deployment drawn within GAP (and half a pixel) of its time, inside the timeline; in a lane,
    marks and bars apart, and labels too."""
    rng = random.Random(7)
    marks: list[board.Mark] = []
    for _ in range(24):
        env, at = rng.choice(("stage", "prod")), NOW - timedelta(days=rng.uniform(0, 30))
        for _ in range(rng.choice((1, 1, 1, 2, 3, 5, 12))):
            at = min(at + timedelta(minutes=rng.uniform(1, 120)), NOW)
            marks.append(mark(len(marks) + 1, at, env=env))
    page = page_of(marks, envs=("stage", "prod"))
    line = board.timeline(page)
    x = drawn_x(line)
    assert len(x) == len(marks)
    for m in marks:
        assert abs(x[m.environment, m.version] - true_x(page, m.finished_at)) <= board.GAP + 0.5
    for env in ("stage", "prod"):
        shapes = sorted(
            [
                (p.x - 7, p.x + 7, p.x, len(f"v{p.mark.version}"))
                for p in line.marks
                if p.mark.environment == env
            ]
            + [
                (c.x1 - 8, c.x2 + 8, c.label_x, len(c.label))
                for c in line.clusters
                if c.marks[0].environment == env
            ]
        )
        assert shapes[0][0] >= board.LEFT - 8 and shapes[-1][1] <= RIGHT_END + 8
        for (_, right, before, wide), (left, _, after, wider) in pairwise(shapes):
            assert left - right >= 8  # a gap between circles and bars
            assert (after - wider * 5.5 / 2) - (before + wide * 5.5 / 2) >= 0  # labels, 10 px
    assert line.clusters and line.marks


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
