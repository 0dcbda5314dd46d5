"""The magazine's content as stored: issues with their sections and articles, and uploads waiting for confirmation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from core.db import Base
from core.db import TopicSet
from core.db import UTCDateTime
from core.db import utcnow

ISSUE_STATUSES = ("draft", "ready", "sent")


class Issue(Base):
    __tablename__ = "issue"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    title: Mapped[str] = mapped_column(String(200))
    period: Mapped[str | None] = mapped_column(String(7))  # "2023-02"
    status: Mapped[str] = mapped_column(String(10), default="draft")
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    source_format: Mapped[str] = mapped_column(String(10), default="text")
    # Each warning as {"msgid", "params"} (translatable); plain strings in older issues.
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # One more at every change of the content (re-import, retag, correction): previews
    # rendered for one version are never shown for another.
    version: Mapped[int] = mapped_column(default=1)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    sections: Mapped[list[Section]] = relationship(
        back_populates="issue", order_by="Section.position", cascade="all, delete-orphan"
    )


class Section(Base):
    __tablename__ = "section"
    __table_args__ = (UniqueConstraint("issue_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issue.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int]
    # Topics that every article of the section carries by default; empty: it goes to everyone.
    topics: Mapped[tuple[str, ...]] = mapped_column(TopicSet, default=())

    issue: Mapped[Issue] = relationship(back_populates="sections")
    articles: Mapped[list[Article]] = relationship(
        back_populates="section", order_by="Article.position", cascade="all, delete-orphan"
    )


class Article(Base):
    __tablename__ = "article"
    __table_args__ = (UniqueConstraint("section_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    section_id: Mapped[int] = mapped_column(ForeignKey("section.id", ondelete="CASCADE"))
    # Position within the whole issue, 1-based: the article's address in the web archive.
    number: Mapped[int]
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(300))
    byline: Mapped[str | None] = mapped_column(String(300))
    source: Mapped[str | None] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    topics: Mapped[tuple[str, ...]] = mapped_column(TopicSet, default=())
    blocks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    section: Mapped[Section] = relationship(back_populates="articles")


class PendingUpload(Base):
    """An issue file an editor uploaded and is previewing, kept until confirmed or cancelled.

    It waits in the database, not on one web server's disk, so that any web process can
    serve the confirmation; the editor's session holds only the random token.
    """

    __tablename__ = "pending_upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    editor_id: Mapped[int] = mapped_column(ForeignKey("editor.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
