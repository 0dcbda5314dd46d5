"""Issues in the database: store a parsed issue, let editors correct it, list what there is.

Plain functions over a caller's session: none of them commits, so a view or a command wraps
each call in one transaction and a failure anywhere leaves nothing half-written. Refusals are
``IssueError``s whose message is one plain English sentence; the message id and its values
are kept apart so that the editor pages can show the same sentence translated. Import
warnings are stored the same way, as message id and values.

Uploads waiting for the editor's confirmation are kept by ``issues.uploads``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import Literal

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import selectinload

from core import registry
from core.i18n import N_
from issues.importer import ParsedIssue
from issues.importer import ParsedSection
from issues.importer import ParseWarning
from issues.importer import parse_issue
from issues.models import Article
from issues.models import Issue
from issues.models import Section

# Column widths of mailer.models; longer values are cut (with a warning) rather than refused.
TITLE_LIMIT = 300
ISSUE_TITLE_LIMIT = 200
SECTION_NAME_LIMIT = 100
SUMMARY_MAX_CHARS = 500
# Ids are the database's integer column; larger ones in an address name nothing.
ID_MAX = 2**31 - 1
# An issue file is text of a few hundred kilobytes; anything far larger is not an issue.
ISSUE_FILE_MAX = 5 * 1024 * 1024

Action = Literal["created", "replaced", "unchanged"]


class IssueError(ValueError):
    """An issue cannot be stored or changed as asked; ``str()`` is one plain English sentence.

    ``msgid`` and ``params`` let a page show the sentence in the reader's language.
    """

    def __init__(self, msgid: str, **params: Any) -> None:
        self.msgid = msgid
        self.params = params
        super().__init__(msgid % params)


class NotFound(IssueError):
    """The issue or article asked for does not exist (or not where it was looked for)."""


@dataclass(frozen=True)
class StoreResult:
    """What ``store_issue`` did: created a new issue, replaced a draft, or found it unchanged."""

    issue: Issue
    action: Action

    @property
    def sections(self) -> int:
        return len(self.issue.sections)

    @property
    def articles(self) -> int:
        return sum(len(section.articles) for section in self.issue.sections)


@dataclass(frozen=True)
class IssueRow:
    """One line of the issue list."""

    id: int
    number: int
    title: str
    period: str | None
    status: str
    articles: int
    warnings: int
    imported_at: datetime


def parse(data: bytes, filename: str | None, config: Mapping[str, Any]) -> ParsedIssue:
    """Parse an issue file with the configured topics (``TOPICS``, ``SECTION_TOPICS``)."""
    return parse_issue(
        data,
        filename=filename,
        section_topics=config["SECTION_TOPICS"],
        topics=config["TOPICS"],
    )


def plan(db_session: Session, parsed: ParsedIssue) -> tuple[Action, Issue | None]:
    """What storing ``parsed`` would do, and to which existing issue; IssueError if refused."""
    same = db_session.scalars(
        select(Issue).where(Issue.content_hash == parsed.content_hash).limit(1)
    ).first()
    if same is not None:
        return "unchanged", same
    if parsed.number is None:
        raise IssueError(
            N_("The file does not say which issue it is; give it a number (such as 总第361期).")
        )
    if not (parsed.title or "").strip():
        raise IssueError(N_("The file does not give the issue a title."))
    issue = db_session.scalars(select(Issue).where(Issue.number == parsed.number)).one_or_none()
    if issue is None:
        return "created", None
    _check_replaceable(db_session, issue)
    return "replaced", issue


def store_issue(db_session: Session, parsed: ParsedIssue) -> StoreResult:
    """Store ``parsed`` as Issue → Section → Article rows in the caller's transaction.

    The same file again (same content hash) changes nothing, so editors' corrections survive.
    A revised file with the number of a draft issue replaces that draft's content in place,
    keeping its id; an issue that is ready or sent is never replaced.
    """
    action, issue = plan(db_session, parsed)
    if action == "unchanged":
        assert issue is not None
        return StoreResult(load_issue(db_session, issue.id), action)
    if issue is None:
        issue = Issue(number=parsed.number)
        db_session.add(issue)
    else:
        issue.status = "draft"
        issue.sections.clear()
        # The old rows go first: the new ones reuse their (issue, position) keys.
        db_session.flush()
        _new_version(db_session, issue)
    _fill_issue(issue, parsed)
    try:
        db_session.flush()
    except IntegrityError as error:
        # Another import stored this number after ``plan`` looked (two editors at once).
        raise IssueError(
            N_(
                "Issue %(number)s was stored by another import at the same moment; "
                "import the file again to see what it would change."
            ),
            number=parsed.number,
        ) from error
    return StoreResult(issue, action)


def _check_replaceable(db_session: Session, issue: Issue) -> None:
    if is_sent(db_session, issue):
        raise IssueError(
            N_("Issue %(number)s has already been sent, so it cannot be replaced."),
            number=issue.number,
        )
    if issue.status != "draft":
        raise IssueError(
            N_(
                "Issue %(number)s is marked ready to send; set it back to draft before replacing it."
            ),
            number=issue.number,
        )


# --- Who may change an issue ----------------------------------------------------------------


def is_sent(db_session: Session, issue: Issue) -> bool:
    """Whether readers may have the issue: it is marked sent, or a send of it has started.

    The issue is marked sent only when its send is done, but from the first batch on readers
    hold its text and links into the archive; so the other packages (campaigns) say, through
    ``core.registry.add_sent_check``, whether a send of it ever started. The app is the one
    the session was made for (``core.db``), so no app context is needed.
    """
    if issue.status == "sent":
        return True
    checks = registry.of(db_session.info["app"]).sent_checks
    return any(check(db_session, issue.id) for check in checks)


def check_editable(db_session: Session, issue: Issue) -> None:
    """Refuse a change to ``issue``'s content unless it is a draft nobody has received.

    A ready issue is public in the archive, so it goes back to draft first (out of the
    archive); a sent one stays as its readers received it, for good.
    """
    if is_sent(db_session, issue):
        raise IssueError(
            N_("Issue %(number)s has been sent; its content stays as readers received it."),
            number=issue.number,
        )
    if issue.status != "draft":
        raise IssueError(
            N_(
                "Issue %(number)s is ready and published to the website; "
                "move it back to draft before changing it."
            ),
            number=issue.number,
        )


def _new_version(db_session: Session, issue: Issue) -> None:
    """Count a change of the issue's content (previews are cached by this version).

    The increment happens in the database, so two editors saving at once make two versions.
    """
    db_session.execute(update(Issue).where(Issue.id == issue.id).values(version=Issue.version + 1))


def _fill_issue(issue: Issue, parsed: ParsedIssue) -> None:
    """Copy the parse into ``issue`` (whose sections are empty), numbering articles in order."""
    warnings = list(parsed.warnings)
    issue.title = _clip(parsed.title.strip(), ISSUE_TITLE_LIMIT, warnings)
    issue.period = parsed.period
    issue.content_hash = parsed.content_hash
    issue.source_format = parsed.format
    number = 0
    for position, parsed_section in enumerate(parsed.sections, start=1):
        section = _section(parsed_section, position, number, warnings)
        number += len(section.articles)
        issue.sections.append(section)
    issue.warnings = [warning.to_dict() for warning in warnings]


def _section(
    parsed: ParsedSection, position: int, before: int, warnings: list[ParseWarning]
) -> Section:
    section = Section(
        name=_clip(parsed.name, SECTION_NAME_LIMIT, warnings),
        position=position,
        topics=tuple(parsed.topics),
    )
    for offset, article in enumerate(parsed.articles, start=1):
        section.articles.append(
            Article(
                number=before + offset,
                position=offset,
                title=_clip(article.title, TITLE_LIMIT, warnings),
                byline=_clip_optional(article.byline, warnings),
                source=_clip_optional(article.source, warnings),
                summary=article.summary,
                topics=tuple(article.topics),
                blocks=list(article.blocks),
            )
        )
    return section


def _clip(text: str, limit: int, warnings: list[ParseWarning]) -> str:
    """``text`` cut to ``limit`` characters; a cut is reported, since it means a doubtful parse."""
    if len(text) <= limit:
        return text
    warnings.append(
        ParseWarning(
            N_("Shortened to %(limit)s characters: %(start)s…"),
            {"limit": limit, "start": text[:40]},
        )
    )
    return text[: limit - 1] + "…"


def _clip_optional(text: str | None, warnings: list[ParseWarning]) -> str | None:
    return None if text is None else _clip(text, TITLE_LIMIT, warnings)


def stored_warnings(issue: Issue) -> list[ParseWarning | str]:
    """An issue's import warnings: message id and values, or the plain sentences older
    imports stored (shown as they are, since they cannot be translated)."""
    return [_stored_warning(item) for item in issue.warnings or []]


def _stored_warning(item: object) -> ParseWarning | str:
    if isinstance(item, dict):
        msgid, params = item.get("msgid"), item.get("params")
        if isinstance(msgid, str) and isinstance(params, dict):
            return ParseWarning(msgid, params)
    return str(item)


def load_issue(db_session: Session, issue_id: int) -> Issue:
    """An issue with its sections and articles loaded, or IssueError when there is none."""
    if not 0 < issue_id <= ID_MAX:
        raise NotFound(N_("There is no issue with id %(id)s."), id=issue_id)
    issue = db_session.scalars(
        select(Issue)
        .where(Issue.id == issue_id)
        .options(selectinload(Issue.sections).selectinload(Section.articles))
    ).one_or_none()
    if issue is None:
        raise NotFound(N_("There is no issue with id %(id)s."), id=issue_id)
    return issue


def list_issues(db_session: Session) -> list[IssueRow]:
    """Every issue, newest number first, with its article count."""
    counts = (
        select(Section.issue_id, func.count(Article.id).label("articles"))
        .join(Article, Article.section_id == Section.id)
        .group_by(Section.issue_id)
        .subquery()
    )
    query = (
        select(Issue, func.coalesce(counts.c.articles, 0))
        .outerjoin(counts, counts.c.issue_id == Issue.id)
        .order_by(Issue.number.desc())
    )
    return [_row(issue, articles) for issue, articles in db_session.execute(query)]


def _row(issue: Issue, articles: int) -> IssueRow:
    return IssueRow(
        id=issue.id,
        number=issue.number,
        title=issue.title,
        period=issue.period,
        status=issue.status,
        articles=articles,
        warnings=len(issue.warnings or []),
        imported_at=issue.imported_at,
    )


def get_article(db_session: Session, article_id: int, issue_id: int | None = None) -> Article:
    """The article with ``article_id`` (in issue ``issue_id`` when given), or NotFound."""
    article = db_session.get(Article, article_id) if 0 < article_id <= ID_MAX else None
    if article is None or (issue_id is not None and article.section.issue_id != issue_id):
        raise NotFound(N_("There is no article with id %(id)s."), id=article_id)
    return article


def retag_article(
    db_session: Session, article_id: int, topics: Iterable[str], allowed: Sequence[str]
) -> Article:
    """Give an article exactly ``topics`` (none: it goes to every reader); only ``allowed`` ones."""
    chosen = tuple(dict.fromkeys(topic.strip() for topic in topics if topic.strip()))
    unknown = [topic for topic in chosen if topic not in allowed]
    if unknown:
        raise IssueError(
            N_("%(topic)s is not a topic; the topics are %(allowed)s."),
            topic=unknown[0],
            allowed=", ".join(allowed),
        )
    article = get_article(db_session, article_id)
    if set(chosen) == set(article.topics):
        return article
    check_editable(db_session, article.section.issue)
    article.topics = tuple(topic for topic in allowed if topic in chosen)
    _new_version(db_session, article.section.issue)
    return article


def set_status(db_session: Session, issue_id: int, status: str) -> Issue:
    """Move an issue between draft and ready (ready: checked, in the public archive, and no
    longer replaced by a re-import). Only the send path marks an issue sent; once a send of
    it has started it never goes back to draft. Pages and commands ask the editor to confirm
    taking a ready issue out of the archive before they call this."""
    issue = load_issue(db_session, issue_id)
    if status not in ("draft", "ready"):
        raise IssueError(N_("An issue can only be set to draft or ready here."))
    if is_sent(db_session, issue):
        raise IssueError(
            N_("Issue %(number)s has already been sent and stays sent."), number=issue.number
        )
    issue.status = status
    return issue


def correct_article(
    db_session: Session, article_id: int, *, title: str | None = None, summary: str | None = None
) -> Article:
    """Correct an article's title and/or summary; an empty title is refused, and so is any
    change to an issue that is not a draft (``check_editable``)."""
    article = get_article(db_session, article_id)
    title = None if title is None else _checked_title(title)
    summary = None if summary is None else _checked_summary(summary)
    changed = (title is not None and title != article.title) or (
        summary is not None and summary != article.summary
    )
    if not changed:
        return article
    check_editable(db_session, article.section.issue)
    article.title = article.title if title is None else title
    article.summary = article.summary if summary is None else summary
    _new_version(db_session, article.section.issue)
    return article


def correct_issue_title(db_session: Session, issue_id: int, title: str) -> Issue:
    """Correct a draft issue's title; an empty or too long title is refused (``check_editable``)."""
    issue = load_issue(db_session, issue_id)
    title = _checked_title(title, ISSUE_TITLE_LIMIT)
    if title != issue.title:
        check_editable(db_session, issue)
        issue.title = title
        _new_version(db_session, issue)
    return issue


# Control characters other than tab and line ends: PostgreSQL refuses NUL in text, and none
# of them can be shown on a page or in an email.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _check_printable(text: str) -> None:
    if _CONTROL.search(text):
        raise IssueError(
            N_("The text has characters that cannot be shown; delete them and try again.")
        )


def _checked_title(title: str, limit: int = TITLE_LIMIT) -> str:
    _check_printable(title)
    title = " ".join(title.split())
    if not title:
        raise IssueError(N_("The title cannot be empty."))
    if len(title) > limit:
        raise IssueError(
            N_("The title is too long; keep it under %(limit)s characters."), limit=limit
        )
    return title


def _checked_summary(summary: str) -> str:
    _check_printable(summary)
    summary = summary.strip()
    if len(summary) > SUMMARY_MAX_CHARS:
        raise IssueError(
            N_("The summary is too long; keep it under %(limit)s characters."),
            limit=SUMMARY_MAX_CHARS,
        )
    return summary
