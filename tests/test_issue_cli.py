"""``flask issue import`` and ``issue list``: JSON and table output, dry runs, refusals."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from issues import store as issues
from issues.importer import to_json
from issues.models import Article
from issues.models import Issue
from tests.helpers import SEED

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [ROOT / "samples" / "sample-issue.txt", ROOT / "samples" / "sample-issue.md"]
ARTICLE_KEYS = {"title", "topics", "source", "summary", "blocks", "chars"}
TABLE_ARTICLES = ("2022年中国集成电路进出口分析", "2022年全球十大芯片采购商情况")


@pytest.fixture(scope="module")
def seed_bytes() -> bytes:
    """The real issue 361; its absence is a failure, not a skip."""
    assert SEED.is_file(), f"the seed issue is missing: {SEED}"
    return SEED.read_bytes()


def run(runner: FlaskCliRunner, *args: object) -> Result:
    return runner.invoke(args=["issue", "import", *map(str, args)])


def stored_articles(db: Session) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Article)) or 0


def written(tmp_path: Path, data: bytes, name: str = "issue.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_json_of_the_seed(app: Flask, runner: FlaskCliRunner, db: Session) -> None:
    """--json prints one object in the documented shape, and the issue is stored."""
    result = run(runner, SEED, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"number", "title", "period", "sections", "warnings"}
    assert (data["number"], data["period"]) == (361, "2023-02")
    assert [s["name"] for s in data["sections"]] == [
        "芯动态",
        "芯观点",
        "芯企业",
        "芯资讯",
        "芯政策",
        "芯伙伴",
    ]
    articles = [a for s in data["sections"] for a in s["articles"]]
    assert len(articles) == 34
    for article in articles:
        assert set(article) == ARTICLE_KEYS
        assert set(article["blocks"]) == {"paragraph", "heading", "table", "caption"}
        assert article["chars"] > 0 and article["title"]
        assert set(article["topics"]) <= {"policy", "companies", "data"}
    by_title = {a["title"]: a for a in articles}
    for title in TABLE_ARTICLES:
        assert by_title[title]["blocks"]["table"] >= 1
        assert "data" in by_title[title]["topics"]
    assert data == to_json(issues.parse(SEED.read_bytes(), SEED.name, app.config))
    assert "Stored issue 361 as a new draft (6 sections, 34 articles)." in result.stderr
    assert stored_articles(db) == 34


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.suffix)
def test_json_of_the_samples(runner: FlaskCliRunner, db: Session, path: Path) -> None:
    """Both sample files import: a numbered issue with at least four sections and a table."""
    result = run(runner, path, "--json", "--dry-run")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data["number"], int) and data["period"]
    assert len(data["sections"]) >= 4
    articles = [a for s in data["sections"] for a in s["articles"]]
    assert any(a["blocks"]["table"] for a in articles)
    assert any(a["source"] for a in articles)
    assert stored_articles(db) == 0


def test_the_two_samples_are_the_same_issue(runner: FlaskCliRunner) -> None:
    """The text and Markdown samples give the same sections and article titles."""
    shapes = []
    for path in SAMPLES:
        data = json.loads(run(runner, path, "--json", "--dry-run").stdout)
        shapes.append([(s["name"], [a["title"] for a in s["articles"]]) for s in data["sections"]])
    assert shapes[0] == shapes[1]


def test_dry_run_shows_a_table_and_stores_nothing(runner: FlaskCliRunner, db: Session) -> None:
    """Without --json the structure is a readable table; --dry-run writes no row."""
    result = run(runner, SEED, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Issue 361 · 天堂之芯 · 2023-02" in result.stdout
    assert "芯政策  [policy]" in result.stdout and "芯动态  [everyone]" in result.stdout
    assert "2023年杭州市重点项目公布" in result.stdout
    assert "6 sections, 34 articles." in result.stdout
    assert "Dry run: nothing was stored." in result.stdout
    assert stored_articles(db) == 0


def test_importing_twice_says_nothing_changed(runner: FlaskCliRunner, db: Session) -> None:
    """The same file a second time is recognised and stores nothing more."""
    assert run(runner, SEED).exit_code == 0
    again = run(runner, SEED)
    assert again.exit_code == 0
    assert "already imported from this same file; nothing changed" in again.stdout
    assert stored_articles(db) == 34


def test_warnings_print_as_english_sentences(
    runner: FlaskCliRunner, tmp_path: Path, seed_bytes: bytes
) -> None:
    """A cut-off file's warnings read the same English sentences in the table and in --json."""
    missing = (
        "“2023未来数商大会在杭州开幕”, listed in the table of contents under 芯资讯, "
        "was not found in the text."
    )
    path = written(tmp_path, "\n".join(seed_bytes.decode().splitlines()[:800]).encode())
    table = run(runner, path, "--dry-run")
    assert table.exit_code == 0, table.output
    assert f"10 warnings:\n  - {missing}\n" in table.stdout
    data = json.loads(run(runner, path, "--json", "--dry-run").stdout)
    assert len(data["warnings"]) == 10 and data["warnings"][0] == missing
    assert all(isinstance(warning, str) for warning in data["warnings"])


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"  \n\r\n\t ", "empty"),
        (bytes(random.Random(3).randrange(256) for _ in range(4096)), "not"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 4, "PDF"),
        ("这只是一段普通的文字，没有目录，也没有文章。\n".encode() * 5, "table of contents"),
    ],
    ids=["empty", "blank", "random-bytes", "pdf", "prose"],
)
def test_a_file_that_is_not_an_issue_is_refused(
    runner: FlaskCliRunner, db: Session, tmp_path: Path, content: bytes, words: str
) -> None:
    """Garbage, empty and structureless files exit 2 with one sentence and store nothing."""
    result = run(runner, written(tmp_path, content), "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert words in result.stderr and "was not imported" in result.stderr
    assert "Traceback" not in result.output
    assert stored_articles(db) == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_pipe_or_device_is_refused_without_reading_it(
    runner: FlaskCliRunner, db: Session, tmp_path: Path, kind: str
) -> None:
    """A named pipe (which would wait for a writer) or /dev/zero (which never ends) exits 2."""
    if kind == "fifo":
        path = tmp_path / "issue.txt"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    result = run(runner, path, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"Cannot read {path}: it is not a regular file."
    assert stored_articles(db) == 0


def test_a_file_larger_than_any_issue_is_refused(
    runner: FlaskCliRunner, db: Session, tmp_path: Path, seed_bytes: bytes
) -> None:
    """A file over the upload limit exits 2 with one sentence; only that much is read."""
    path = written(tmp_path, seed_bytes + b"\n" * issues.ISSUE_FILE_MAX)
    result = run(runner, path, "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert "larger than 5 MB" in result.stderr and "Traceback" not in result.output
    assert stored_articles(db) == 0


def test_a_refused_store_keeps_stdout_empty(
    runner: FlaskCliRunner, db: Session, tmp_path: Path, seed_bytes: bytes
) -> None:
    """An import refused when storing prints nothing on stdout with --json, and exits 2."""
    assert run(runner, SEED).exit_code == 0
    db.execute(update(Issue).values(status="ready"))
    db.commit()
    path = written(tmp_path, seed_bytes.replace("10项".encode(), "11项".encode()))
    result = run(runner, path, "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert "ready to send" in result.stderr


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_an_unreadable_path_is_refused(
    runner: FlaskCliRunner, db: Session, tmp_path: Path, kind: str
) -> None:
    """A path that is missing or is a folder exits 2 with a sentence naming it."""
    path = tmp_path / "nowhere.txt" if kind == "missing" else tmp_path
    result = run(runner, path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Cannot read {path}:")
    assert "Traceback" not in result.output
    assert stored_articles(db) == 0


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.encode("gb18030"),
        lambda text: text.replace("\n", "\r\n").encode("utf-8-sig"),
    ],
    ids=["gb18030", "utf8-bom-crlf"],
)
def test_other_encodings_give_the_same_issue(
    runner: FlaskCliRunner, tmp_path: Path, seed_bytes: bytes, encode: object
) -> None:
    """The seed saved as GB18030, or as UTF-8 with BOM and CRLF, reads exactly like the original."""
    original = json.loads(run(runner, SEED, "--json", "--dry-run").stdout)
    path = written(tmp_path, encode(seed_bytes.decode("utf-8")))  # type: ignore[operator]
    result = run(runner, path, "--json", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == original


def test_a_sent_issue_is_not_replaced(
    runner: FlaskCliRunner, db: Session, tmp_path: Path, seed_bytes: bytes
) -> None:
    """A revised file for an issue already sent exits 2 and leaves the sent issue alone."""
    assert run(runner, SEED).exit_code == 0
    db.execute(update(Issue).values(status="sent"))
    db.commit()
    revised = seed_bytes.replace("共颁发技术创新奖10项".encode(), "共颁发技术创新奖12项".encode())
    result = run(runner, written(tmp_path, revised), "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "Issue 361 has already been sent, so it cannot be replaced."
    assert "12项" not in db.scalars(select(Article.summary).where(Article.number == 1)).one()


def test_an_issue_whose_send_started_cannot_go_back_to_draft_nor_be_replaced(
    runner: FlaskCliRunner, db: Session, tmp_path: Path, seed_bytes: bytes
) -> None:
    """A ready issue with a running send is sent for the commands too: draft exits 2 and a
    re-import exits 2, and the issue stays ready and unchanged."""
    from campaigns.models import Campaign
    from core.db import utcnow

    assert run(runner, SEED).exit_code == 0
    assert runner.invoke(args=["issue", "ready", "361"]).exit_code == 0
    issue = db.scalars(select(Issue)).one()
    db.add(
        Campaign(issue_id=issue.id, status="running", created_by="a@x.test", started_at=utcnow())
    )
    db.commit()
    draft = runner.invoke(args=["issue", "draft", "361", "--yes"])
    assert draft.exit_code == 2
    assert draft.stderr.strip() == "Issue 361 has already been sent and stays sent."
    revised = seed_bytes.replace("共颁发技术创新奖10项".encode(), "共颁发技术创新奖12项".encode())
    result = run(runner, written(tmp_path, revised))
    assert result.exit_code == 2
    assert result.stderr.strip() == "Issue 361 has already been sent, so it cannot be replaced."
    db.expire_all()
    assert db.scalars(select(Issue.status)).one() == "ready"


def test_issue_list(runner: FlaskCliRunner) -> None:
    """issue list says when there is nothing, then shows each imported issue on a line."""
    assert "No issues have been imported yet." in runner.invoke(args=["issue", "list"]).output
    assert run(runner, SEED).exit_code == 0
    listing = runner.invoke(args=["issue", "list"])
    assert listing.exit_code == 0
    [line] = listing.output.splitlines()
    assert line.startswith("361\t2023-02\tdraft\t34 articles\t") and line.endswith("\t天堂之芯")
