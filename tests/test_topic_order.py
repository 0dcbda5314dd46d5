"""One order of topics everywhere (issue 12): that of NEWSLETTER_TOPICS, not the order of the
labels in the code nor the order a reader's topics were stored in, on the editor's pages, the
reader's change list and in the email, joined as each language lists things."""

from __future__ import annotations

import dataclasses
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from issues import store as issues
from issues.models import Issue
from mailer.render import render_segment
from mailer.segments import make_segment
from tests.helpers import csrf_token
from tests.test_segments import config
from tests.test_segments import seed
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import path_of
from tests.test_subscriber_admin import LIST
from tests.test_subscriber_admin import _admin

# Neither the default order (policy, companies, data) nor alphabetical.
ORDER = ("data", "policy", "companies")


@pytest.mark.parametrize(
    ("locale", "listed"),
    [("zh", "主题：数据、政策、企业。"), ("en", "topics: Data, Policy, Companies.")],
)
def test_the_email_names_the_readers_topics_in_the_configured_order(
    locale: str, listed: str
) -> None:
    """The email's "why you get this" line follows the configuration, with 、 in Chinese."""
    topics = ("companies", "data", "policy")
    segment = make_segment(topics, "digest", locale, ORDER)
    rendered = render_segment(seed(), segment, config(TOPICS=ORDER))
    assert listed in rendered.text
    assert listed in rendered.html


def test_the_editors_pages_list_topics_in_the_configured_order(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """The subscriber list and one subscriber's page say 数据、政策 for a reader whose topics
    are stored as (policy, data); an editor never sees the code's own order."""
    app.config["TOPICS"] = ORDER
    _admin(client, db)
    reader = add_subscriber(db, "order@example.com", topics=("policy", "data"))
    listing = client.get(LIST).get_data(as_text=True)
    assert re.search(r"<td>\s*数据、政策\s*</td>", listing), listing
    detail = client.get(f"{LIST}{reader.id}").get_data(as_text=True)
    assert "<dd>数据、政策</dd>" in detail


def test_the_readers_change_list_follows_the_configured_order(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """ "Saved" names the topics before and after in the configured order."""
    app.config["TOPICS"] = ORDER
    reader = add_subscriber(db, "order@example.com", topics=("policy",), locale="zh")
    path = path_of(app, "preferences", reader)
    data = {
        "csrf_token": csrf_token(client, path),
        "topics": ["policy", "companies", "data"],
        "format": "full",
        "language": "zh",
    }
    page = client.post(path, data=data, follow_redirects=True).get_data(as_text=True)
    assert "已保存。主题：政策 → 数据、政策、企业。" in page


def _seed_with_tags(db: Session, tags: list[str]) -> None:
    """The seed issue, ready, with its first article tagged ``tags`` (in that order)."""
    parsed = seed()
    first, *rest = parsed.sections
    article = dataclasses.replace(first.articles[0], topics=tags)
    section = dataclasses.replace(first, articles=[article, *first.articles[1:]])
    issues.store_issue(db, dataclasses.replace(parsed, sections=[section, *rest]))
    db.execute(select(Issue)).scalar_one().status = "ready"
    db.commit()


def test_an_articles_tags_on_the_website_follow_the_configured_order(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """The archive shows an article's topics in the configured order, whatever order it was
    tagged in; a topic no longer configured keeps its name (政策), not its key."""
    _seed_with_tags(db, ["companies", "policy", "data"])
    app.config["TOPICS"] = ORDER
    page = client.get("/issues/361/1").get_data(as_text=True)
    assert re.findall(r'<span class="topic">([^<]*)</span>', page) == ["数据", "政策", "企业"]
    app.config["TOPICS"] = ("companies", "data")
    page = client.get("/issues/361/1?lang=en").get_data(as_text=True)
    assert re.findall(r'<span class="topic">([^<]*)</span>', page) == [
        "Companies",
        "Data",
        "Policy",
    ]
