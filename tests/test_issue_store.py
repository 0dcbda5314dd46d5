"""Storing parsed issues: order, dedupe by content, draft replacement, one transaction."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from core import db as core_db
from issues import store as issues
from issues.importer import ParsedIssue
from issues.models import Article
from issues.models import Issue
from issues.models import Section
from tests.helpers import SEED

TOPICS = ["policy", "companies", "data"]


@pytest.fixture(scope="module")
def seed_bytes() -> bytes:
    """The real issue 361; its absence is a failure, not a skip."""
    assert SEED.is_file(), f"the seed issue is missing: {SEED}"
    return SEED.read_bytes()


def parse(app: Flask, data: bytes, filename: str = "seed.txt") -> ParsedIssue:
    return issues.parse(data, filename, app.config)


def revised(data: bytes) -> bytes:
    """The seed with one figure changed in the first article's first sentence."""
    old, new = "共颁发技术创新奖10项".encode(), "共颁发技术创新奖11项".encode()
    assert old in data
    return data.replace(old, new)


def counts(db: Session) -> tuple[int, int, int]:
    db.rollback()
    return tuple(  # type: ignore[return-value]
        db.scalar(select(func.count()).select_from(model)) for model in (Issue, Section, Article)
    )


def unwritable_blocks() -> Any:
    """A body the JSON column cannot serialise: a stand-in for any failure at the database."""
    return [{"type": "paragraph", "text": object()}]


def store(db: Session, parsed: ParsedIssue) -> issues.StoreResult:
    result = issues.store_issue(db, parsed)
    db.commit()
    return result


def test_seed_is_stored_in_issue_order(app: Flask, db: Session, seed_bytes: bytes) -> None:
    """The seed becomes 1 issue, 6 sections and 34 articles numbered 1…34 in the file's order."""
    parsed = parse(app, seed_bytes)
    result = store(db, parsed)
    assert result.action == "created"
    db.expunge_all()
    issue = issues.load_issue(db, result.issue.id)
    assert (issue.number, issue.period, issue.status) == (361, "2023-02", "draft")
    assert [s.name for s in issue.sections] == [s.name for s in parsed.sections]
    assert len(issue.sections) == 6
    stored = [a for s in issue.sections for a in s.articles]
    assert [a.number for a in stored] == list(range(1, 35))
    assert [a.title for a in stored] == [a.title for a in parsed.articles]
    assert [a.source for a in stored] == [a.source for a in parsed.articles]
    assert [a.blocks for a in stored] == [a.blocks for a in parsed.articles]
    assert [a.summary for a in stored] == [a.summary for a in parsed.articles]
    for section, parsed_section in zip(issue.sections, parsed.sections, strict=True):
        assert section.topics == tuple(sorted(parsed_section.topics))
        assert [a.position for a in section.articles] == list(range(1, len(section.articles) + 1))
    assert counts(db) == (1, 6, 34)


def test_the_same_file_twice_stores_nothing_new(app: Flask, db: Session, seed_bytes: bytes) -> None:
    """Importing the same file again says unchanged, adds no rows and keeps editors' changes."""
    first = store(db, parse(app, seed_bytes))
    article = first.issue.sections[0].articles[0]
    issues.correct_article(db, article.id, title="编辑改过的标题")
    db.commit()
    again = store(db, parse(app, seed_bytes))
    assert again.action == "unchanged"
    assert again.issue.id == first.issue.id
    assert counts(db) == (1, 6, 34)
    assert db.get(Article, article.id, populate_existing=True).title == "编辑改过的标题"  # type: ignore[union-attr]


def test_a_revised_file_replaces_the_draft_in_place(
    app: Flask, db: Session, seed_bytes: bytes
) -> None:
    """A changed file with the same number replaces the draft's content and keeps its id."""
    first = store(db, parse(app, seed_bytes))
    changed = parse(app, revised(seed_bytes))
    result = store(db, changed)
    assert result.action == "replaced"
    assert result.issue.id == first.issue.id
    assert counts(db) == (1, 6, 34)
    issue = db.get(Issue, first.issue.id, populate_existing=True)
    assert issue is not None and issue.content_hash == changed.content_hash
    summary = db.scalars(select(Article.summary).where(Article.number == 1)).one()
    assert "11项" in summary and summary == changed.articles[0].summary


@pytest.mark.parametrize(
    ("status", "words"), [("sent", "already been sent"), ("ready", "ready to send")]
)
def test_an_issue_past_draft_is_never_replaced(
    app: Flask, db: Session, seed_bytes: bytes, status: str, words: str
) -> None:
    """A revised file for an issue that is sent (or ready to send) is refused; nothing changes."""
    first = store(db, parse(app, seed_bytes))
    first.issue.status = status
    db.commit()
    with pytest.raises(issues.IssueError, match=words) as refusal:
        issues.store_issue(db, parse(app, revised(seed_bytes)))
    db.rollback()
    assert "361" in str(refusal.value)
    assert counts(db) == (1, 6, 34)
    summary = db.scalars(select(Article.summary).where(Article.number == 1)).one()
    assert "10项" in summary


def test_a_failure_midway_leaves_nothing(app: Flask, db: Session, seed_bytes: bytes) -> None:
    """When the last article cannot be written, the issue and its other rows are not kept.

    SQLite reports the unserialisable body through SQLAlchemy; psycopg raises TypeError itself.
    """
    parsed = parse(app, seed_bytes)
    last = parsed.sections[-1].articles[-1]
    last.blocks = unwritable_blocks()
    with (
        app.app_context(),
        pytest.raises((StatementError, TypeError)),
        core_db.transaction() as db_session,
    ):
        issues.store_issue(db_session, parsed)
    assert counts(db) == (0, 0, 0)


def test_a_failed_replacement_keeps_the_old_draft(
    app: Flask, db: Session, seed_bytes: bytes
) -> None:
    """A replacement that fails halfway leaves the previous draft exactly as it was."""
    store(db, parse(app, seed_bytes))
    broken = parse(app, revised(seed_bytes))
    broken.sections[-1].articles[-1].blocks = unwritable_blocks()
    with (
        app.app_context(),
        pytest.raises((StatementError, TypeError)),
        core_db.transaction() as db_session,
    ):
        issues.store_issue(db_session, broken)
    assert counts(db) == (1, 6, 34)
    summary = db.scalars(select(Article.summary).where(Article.number == 1)).one()
    assert "10项" in summary


def test_a_parse_without_number_is_refused(app: Flask, db: Session, seed_bytes: bytes) -> None:
    """An issue whose file names no number cannot be stored, and says how to fix it."""
    parsed = dataclasses.replace(parse(app, seed_bytes), number=None)
    with pytest.raises(issues.IssueError, match="give it a number"):
        issues.store_issue(db, parsed)
    db.rollback()
    assert counts(db) == (0, 0, 0)


def test_warnings_are_stored_as_message_ids(app: Flask, db: Session, seed_bytes: bytes) -> None:
    """Warnings keep message id and values in the database; older plain sentences still read."""
    parsed = parse(app, seed_bytes)
    long_title = "很长的标题" * 80
    parsed.sections[0].articles[0].title = long_title
    issue_id = store(db, parsed).issue.id
    db.expire_all()
    issue = db.get(Issue, issue_id)
    assert issue is not None
    assert issue.warnings == [
        {
            "msgid": "Shortened to %(limit)s characters: %(start)s…",
            "params": {"limit": issues.TITLE_LIMIT, "start": long_title[:40]},
        }
    ]
    [warning] = issues.stored_warnings(issue)
    assert str(warning) == f"Shortened to 300 characters: {long_title[:40]}…"
    issue.warnings = ["An older import's sentence."]
    assert issues.stored_warnings(issue) == ["An older import's sentence."]


@pytest.fixture
def article(app: Flask, db: Session, seed_bytes: bytes) -> Article:
    result = store(db, parse(app, seed_bytes))
    return result.issue.sections[2].articles[0]


def test_retag_sets_exactly_the_chosen_topics(db: Session, article: Article) -> None:
    """Re-tagging replaces the topics; ticking none means every reader."""
    issues.retag_article(db, article.id, ["data", "policy", "data"], TOPICS)
    db.commit()
    assert db.get(Article, article.id, populate_existing=True).topics == ("data", "policy")  # type: ignore[union-attr]
    issues.retag_article(db, article.id, [], TOPICS)
    db.commit()
    assert db.get(Article, article.id, populate_existing=True).topics == ()  # type: ignore[union-attr]


def test_retag_refuses_an_unknown_topic(db: Session, article: Article) -> None:
    """A topic that is not configured is refused with the list of real ones."""
    before = article.topics
    with pytest.raises(issues.IssueError, match=r"sports is not a topic.*policy, companies, data"):
        issues.retag_article(db, article.id, ["policy", "sports"], TOPICS)
    db.rollback()
    assert db.get(Article, article.id, populate_existing=True).topics == before  # type: ignore[union-attr]


def test_a_sent_issue_cannot_change_at_all(db: Session, article: Article) -> None:
    """Once sent, neither topics nor titles nor summaries change (issue 13.5); asking for
    what is already there is no change and is not refused."""
    article.section.issue.status = "sent"
    db.commit()
    frozen = "Issue 361 has been sent; its content stays as readers received it."
    with pytest.raises(issues.IssueError, match=frozen):
        issues.retag_article(db, article.id, ["policy"], TOPICS)
    with pytest.raises(issues.IssueError, match=frozen):
        issues.correct_article(db, article.id, title="更正后的标题")
    with pytest.raises(issues.IssueError, match=frozen):
        issues.correct_article(db, article.id, summary="新的摘要。")
    issues.retag_article(db, article.id, list(article.topics), TOPICS)
    issues.correct_article(db, article.id, title=article.title, summary=article.summary)
    db.commit()
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and fresh.title != "更正后的标题"


def test_a_ready_issue_is_edited_only_after_going_back_to_draft(
    db: Session, article: Article
) -> None:
    """A ready issue is public: its article changes are refused until it is a draft again."""
    issue = article.section.issue
    issues.set_status(db, issue.id, "ready")
    db.commit()
    published = "ready and published to the website; move it back to draft before changing it"
    with pytest.raises(issues.IssueError, match=published):
        issues.correct_article(db, article.id, title="悄悄改掉的标题")
    with pytest.raises(issues.IssueError, match=published):
        issues.retag_article(db, article.id, ["policy"], TOPICS)
    issues.set_status(db, issue.id, "draft")
    issues.correct_article(db, article.id, title="改过的标题")
    issues.retag_article(db, article.id, ["policy"], TOPICS)
    db.commit()
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and (fresh.title, fresh.topics) == ("改过的标题", ("policy",))


def test_every_change_of_content_makes_a_new_version(db: Session, article: Article) -> None:
    """Retagging and correcting count versions (previews are cached by them); no-ops do not."""
    issue = article.section.issue
    versions = [issue.version]
    for change in (
        lambda: issues.retag_article(db, article.id, ["policy"], TOPICS),
        lambda: issues.correct_article(db, article.id, title="新标题"),
        lambda: issues.correct_article(db, article.id, title="新标题"),
    ):
        change()
        db.commit()
        db.refresh(issue)
        versions.append(issue.version)
    assert versions == [1, 2, 3, 3]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"title": "   "}, "title cannot be empty"),
        ({"title": "长" * 301}, "title is too long"),
        ({"summary": "长" * 501}, "summary is too long"),
    ],
)
def test_corrections_are_checked(
    db: Session, article: Article, changes: dict[str, str], words: str
) -> None:
    """An empty or overlong title, or an overlong summary, is refused and nothing changes."""
    title, summary = article.title, article.summary
    with pytest.raises(issues.IssueError, match=words):
        issues.correct_article(db, article.id, **changes)
    db.rollback()
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and (fresh.title, fresh.summary) == (title, summary)


def test_corrections_tidy_spaces(db: Session, article: Article) -> None:
    """Runs of spaces and line breaks in a corrected title become single spaces."""
    issues.correct_article(db, article.id, title="  新\n标题  ", summary=" 一句话。 ")
    db.commit()
    fresh = db.get(Article, article.id, populate_existing=True)
    assert fresh is not None and (fresh.title, fresh.summary) == ("新 标题", "一句话。")


def test_list_issues_newest_first(app: Flask, db: Session, seed_bytes: bytes) -> None:
    """The list shows each issue once, highest number first, with its article count."""
    store(db, parse(app, seed_bytes))
    later = seed_bytes.replace("总第361期".encode(), "总第362期".encode())
    store(db, parse(app, later))
    rows = issues.list_issues(db)
    assert [(row.number, row.articles, row.status) for row in rows] == [
        (362, 34, "draft"),
        (361, 34, "draft"),
    ]


def test_two_imports_of_one_number_at_once(app: Flask, db: Session, seed_bytes: bytes) -> None:
    """When another import stores the number between the check and the write, the later one
    is refused in a sentence, writes nothing, and the first one's issue stays as stored."""
    mine, theirs = parse(app, seed_bytes), parse(app, revised(seed_bytes))

    def the_other_editor_first(*_: object) -> None:
        if not counts(db)[0]:
            store(db, theirs)

    with (
        app.app_context(),
        pytest.raises(issues.IssueError, match="stored by another import") as refused,
        core_db.transaction() as db_session,
    ):
        event.listen(db_session, "before_flush", the_other_editor_first)
        issues.store_issue(db_session, mine)
    assert refused.value.msgid and "361" in str(refused.value)
    assert counts(db) == (1, 6, 34)
    assert db.scalars(select(Issue.content_hash)).one() == theirs.content_hash


def test_the_same_issue_in_other_encodings_is_recognised(
    app: Flask, db: Session, seed_bytes: bytes
) -> None:
    """The seed again as GB18030, or as UTF-8 with BOM and CRLF, is the same file: unchanged."""
    store(db, parse(app, seed_bytes))
    text = seed_bytes.decode()
    for data in (text.encode("gb18030"), text.replace("\n", "\r\n").encode("utf-8-sig")):
        assert store(db, parse(app, data)).action == "unchanged"
    assert counts(db) == (1, 6, 34)


@pytest.mark.parametrize("number", [0, -1, 2**31, 2**63, 10**30])
def test_ids_outside_the_integer_column_are_not_found(db: Session, number: int) -> None:
    """An id no row can have is NotFound, not a database error."""
    with pytest.raises(issues.NotFound):
        issues.load_issue(db, number)
    with pytest.raises(issues.NotFound):
        issues.get_article(db, number)


def start_a_send(db: Session, issue: Issue, status: str) -> None:
    """A send of ``issue`` that started (as campaigns.control.start leaves it), now ``status``."""
    from campaigns.models import Campaign
    from core.db import utcnow

    db.add(
        Campaign(
            issue_id=issue.id,
            status=status,
            created_by="chief@newsletter.test",
            started_at=utcnow(),
        )
    )
    db.commit()


@pytest.mark.parametrize("status", ["running", "paused", "cancelled"])
def test_a_ready_issue_whose_send_started_is_frozen(
    app: Flask, db: Session, article: Article, seed_bytes: bytes, status: str
) -> None:
    """Readers hold a ready issue from the send's first batch: it counts as sent before the
    send is done, so it neither goes back to draft nor changes nor is re-imported over."""
    issue = article.section.issue
    issues.set_status(db, issue.id, "ready")
    db.commit()
    assert not issues.is_sent(db, issue)
    start_a_send(db, issue, status)
    assert issues.is_sent(db, issue)
    with pytest.raises(issues.IssueError, match="has already been sent and stays sent"):
        issues.set_status(db, issue.id, "draft")
    with pytest.raises(issues.IssueError, match="its content stays as readers received it"):
        issues.correct_article(db, article.id, title="发出后改的标题")
    with pytest.raises(issues.IssueError, match="has already been sent, so it cannot be replaced"):
        issues.store_issue(db, parse(app, revised(seed_bytes)))
    db.rollback()
    assert db.get(Issue, issue.id, populate_existing=True).status == "ready"  # type: ignore[union-attr]


def test_a_send_that_never_started_does_not_freeze(db: Session, article: Article) -> None:
    """A send scheduled but not begun (or cancelled before it began) reached nobody."""
    from campaigns.models import Campaign

    issue = article.section.issue
    issues.set_status(db, issue.id, "ready")
    db.add(Campaign(issue_id=issue.id, status="scheduled", created_by="chief@newsletter.test"))
    db.commit()
    assert not issues.is_sent(db, issue)
    issues.set_status(db, issue.id, "draft")
    issues.correct_article(db, article.id, title="定时发送前改的标题")
    db.commit()
