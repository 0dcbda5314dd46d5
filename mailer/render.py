"""Email templates: a sandboxed Jinja2 environment per language, usable without any request.

Workers render email outside Flask's request context, so emails do not use Flask's Jinja
environment. Each language gets its own environment with its catalogue installed, since
installing translations into a shared environment per call would not be thread-safe.

An issue is rendered once per segment (``render_segment``): templates → CSS inlined with
css-inline (media queries stay in ``<head>``) → size checked against the budget, shortening
the longest articles to excerpts until the HTML fits, in at most four renders whatever the
number of articles (``_fit``). The result keeps slot placeholders;
``RenderedSegment.personalise`` fills them for each recipient without rendering again.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from functools import cache
from typing import Any

import css_inline
from babel.dates import format_skeleton
from jinja2 import FileSystemLoader
from jinja2 import StrictUndefined
from jinja2 import select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from core import i18n
from core import topics
from core.config import LOCALES
from core.config import ROOT
from mailer.blocks import breakable
from mailer.blocks import linked
from mailer.blocks import runs
from mailer.segments import ArticleContent
from mailer.segments import IssueContent
from mailer.segments import Part
from mailer.segments import Personalised
from mailer.segments import Recipient
from mailer.segments import Segment
from mailer.segments import Slots
from mailer.segments import escaped_values
from mailer.segments import included
from mailer.segments import slot_values

EMAIL_TEMPLATES = ROOT / "templates" / "email"
# Media queries cannot be inlined: keep_at_rules leaves them in a <style> in <head>.
_INLINER = css_inline.CSSInliner(keep_at_rules=True, minify_css=True, load_remote_stylesheets=False)
# Each article's rendered HTML sits between these comments, so its size can be measured.
_ARTICLE = re.compile(r"<!--a(\d+)-->(.*?)<!--/a\1-->", re.DOTALL)
_MARKER = re.compile(r"<!--/?a\d+-->")
EXCERPT_CHARS = 120
MAX_NONCE_TRIES = 3
# Renders one segment may take to fit the budget: everything in full, everything as an
# excerpt (which measures what shortening each article saves), the chosen mix, and one
# correction should the measured sizes not add up. Whatever the number of articles.
MAX_FIT_RENDERS = 4


class BudgetExceeded(Exception):
    """Even with every article shortened, the HTML is larger than the configured budget."""


@cache
def environment(locale: str) -> SandboxedEnvironment:
    """The email environment for ``locale`` (HTML autoescaped, undefined names are errors)."""
    if locale not in LOCALES:
        raise ValueError(f"unknown locale {locale!r}")
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(EMAIL_TEMPLATES)),
        # HTML is escaped; the text part is not HTML, so escaping it would corrupt names with &.
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["locale"] = locale
    env.globals["runs"] = runs
    env.filters["breakable"] = breakable
    env.filters["linked"] = linked
    return env


def render_pair(name: str, locale: str, **context: Any) -> tuple[str, str]:
    """Render ``name.html`` and ``name.txt`` from templates/email in ``locale``."""
    env = environment(locale)
    html = env.get_template(f"{name}.html").render(**context)
    text = env.get_template(f"{name}.txt").render(**context)
    return html, text


def inline_css(html: str) -> str:
    """``html`` with its stylesheet moved into style attributes (media queries kept)."""
    inlined: str = _INLINER.inline(html)
    return inlined


# --- Words that depend on the language ----------------------------------------------------


def topic_labels(locale: str, configured: Iterable[str]) -> dict[str, str]:
    """The name readers see for each topic key: the configured ones in the configured order,
    then those the code knows that are no longer configured (old articles keep their tags); a
    key without a label is shown as it is."""
    gettext = i18n.translations(locale).gettext
    order = list(configured)
    keys = order + [key for key in topics.LABELS if key not in order]
    return {key: topics.label(key, gettext) for key in keys}


def topic_names(keys: Iterable[str], locale: str, configured: Iterable[str]) -> str:
    """The topics' names in the one order readers see everywhere, that of NEWSLETTER_TOPICS
    (政策、企业、数据 by default), joined as the language lists things."""
    gettext = i18n.translations(locale).gettext
    ranked = topics.in_order(keys, configured)
    return gettext(", ").join(topics.label(key, gettext) for key in ranked)


def period_label(period: str | None, locale: str) -> str:
    """ "2023-02" as 2023年2月 or February 2023; anything unexpected is shown as it is."""
    if not period:
        return ""
    try:
        month = datetime.date.fromisoformat(f"{period}-01")
    except ValueError:
        return period
    return format_skeleton("yMMMM", month, locale="zh_CN" if locale == "zh" else "en")


def issue_line(number: int, period: str | None, locale: str) -> str:
    """第361期 · 2023年2月 / Issue 361 · February 2023."""
    gettext = i18n.translations(locale).gettext
    line = gettext("Issue no. %(number)s") % {"number": number}
    label = period_label(period, locale)
    return f"{line} · {label}" if label else line


def subject(title: str, number: int, period: str | None, locale: str) -> str:
    """The Subject: the magazine, the issue number and the month."""
    return f"{title} · {issue_line(number, period, locale)}"


def greetings(locale: str, name_mark: str) -> tuple[str, str]:
    """(greeting with ``name_mark`` where the name goes, greeting for a reader without a name)."""
    gettext = i18n.translations(locale).gettext
    return gettext("Dear %(name)s,") % {"name": name_mark}, gettext("Dear reader,")


# --- One segment --------------------------------------------------------------------------


@dataclass(frozen=True)
class Shortened:
    """An article that became an excerpt so that the email fits the budget."""

    number: int
    title: str


@dataclass(frozen=True)
class RenderedSegment:
    """An issue rendered for one segment, with slot placeholders still in it."""

    segment: Segment
    issue_number: int
    subject: str
    html: str
    text: str
    slots: Slots
    greetings: tuple[str, str]
    view_online_url: str
    shortened: tuple[Shortened, ...] = ()
    articles: tuple[int, ...] = field(default=())

    @property
    def html_bytes(self) -> int:
        """The largest the HTML part can become once a recipient's values are filled in."""
        return len(self.html.encode("utf-8")) + self.slots.reserve(self.html)

    def personalise(self, recipient: Recipient) -> Personalised:
        """The HTML and text for ``recipient``: slots filled, nothing rendered again."""
        values = slot_values(recipient, self.greetings, self.slots["name"], self.view_online_url)
        html = self.slots.fill(self.html, escaped_values(values))
        return Personalised(html=html, text=self.slots.fill(self.text, values))


@dataclass(frozen=True)
class ArticleView:
    """An article as the email templates draw it."""

    number: int
    title: str
    byline: str | None
    source: str | None
    blocks: list[Mapping[str, Any]]
    excerpt: str
    url: str
    shortened: bool

    @property
    def text(self) -> str:
        """The body as plain text, a blank line between blocks, table cells joined by |."""
        return "\n\n".join(_block_text(block) for block in self.blocks)


def _block_text(block: Mapping[str, Any]) -> str:
    if block["type"] == "table":
        rows = [block["header"], *block["rows"]] if block["header"] else block["rows"]
        return "\n".join(" | ".join(row) for row in rows)
    return str(block["text"])


def excerpt(article: ArticleContent) -> str:
    """A short extract for digests and shortened articles: the summary, else the opening."""
    if article.summary.strip():
        return article.summary.strip()
    for block in article.blocks:
        if block["type"] == "paragraph":
            text = str(block["text"]).strip()
            return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
    return ""


def render_segment(
    issue: IssueContent, segment: Segment, config: Mapping[str, Any]
) -> RenderedSegment:
    """Render ``issue`` for ``segment`` under the HTML budget; raise BudgetExceeded if impossible."""
    if issue.number is None:
        raise ValueError("The issue has no number, so its web archive links cannot be made.")
    for _ in range(MAX_NONCE_TRIES):
        rendered = _fit(issue, issue.number, segment, config, Slots())
        if rendered.slots.intact(rendered.html) and rendered.slots.intact(rendered.text):
            return rendered
    raise RuntimeError("the slot placeholders kept colliding with the issue text")


def _fit(
    issue: IssueContent, number: int, segment: Segment, config: Mapping[str, Any], slots: Slots
) -> RenderedSegment:
    """Render under the budget in a bounded number of renders (at most ``MAX_FIT_RENDERS``).

    The first render has every article in full; when it fits, it is the email. Otherwise a
    second render has every article as an excerpt, which measures what shortening each one
    saves (an article's bytes between its markers do not depend on the others). The
    longest articles are shortened first until the savings bring it under budget, and
    one more render makes that email; a correction round follows only if the sizes did not
    add up, and the all-excerpts render is the fallback that is known to fit.
    """
    parts = included(issue, segment.topics)
    budget = int(config["HTML_BUDGET_BYTES"])

    def render(shortened: frozenset[int]) -> RenderedSegment:
        return _render(issue, number, parts, segment, shortened, config, slots)

    whole = render(frozenset())
    if whole.html_bytes <= budget:
        return _finished(whole)
    excerpts = render(frozenset(whole.articles)) if segment.format == "full" else whole
    if excerpts.html_bytes > budget or segment.format != "full":
        raise BudgetExceeded(
            f"The {segment.format} email for {segment.key} is {excerpts.html_bytes} bytes, "
            f"over the {budget}-byte budget even with every article shortened."
        )
    full, short = _sizes(whole.html), _sizes(excerpts.html)
    savings = _savings(full, short)
    # What shortening adds outside the articles: the notice that says how many were shortened.
    notice = max(
        0, (excerpts.html_bytes - sum(short.values())) - (whole.html_bytes - sum(full.values()))
    )
    attempt, renders = whole, 2
    while renders < MAX_FIT_RENDERS:
        extra = 0 if attempt.shortened else notice
        chosen = _choose(savings, _shortened(attempt), attempt.html_bytes - budget + extra)
        if chosen == frozenset(whole.articles):
            break
        attempt, renders = render(chosen), renders + 1
        if attempt.html_bytes <= budget:
            return _finished(attempt)
    return _finished(excerpts)


def _finished(rendered: RenderedSegment) -> RenderedSegment:
    """The render without the markers that delimit each article."""
    return replace(rendered, html=_MARKER.sub("", rendered.html))


def _shortened(rendered: RenderedSegment) -> frozenset[int]:
    return frozenset(item.number for item in rendered.shortened)


def _sizes(html: str) -> dict[int, int]:
    """Each article's rendered bytes, by number, measured between its markers (both pairs)."""
    sizes: dict[int, int] = {}
    for match in _ARTICLE.finditer(html):  # the article's contents entry, then its body
        number = int(match.group(1))
        sizes[number] = sizes.get(number, 0) + len(match.group(2).encode("utf-8"))
    return sizes


def _savings(full: Mapping[int, int], short: Mapping[int, int]) -> list[tuple[int, int]]:
    """(bytes saved, number) for every article, the longest in full first (issue order on
    ties), as editors expect: a few long articles become excerpts rather than many short."""
    longest_first = sorted(full, key=lambda number: (-full[number], number))
    return [(full[number] - short.get(number, 0), number) for number in longest_first]


def _choose(
    savings: list[tuple[int, int]], shortened: frozenset[int], overflow: int
) -> frozenset[int]:
    """``shortened`` plus the articles that save most, until ``overflow`` bytes are saved."""
    chosen = set(shortened)
    for saving, number in savings:
        if overflow <= 0:
            break
        if number not in chosen:
            chosen.add(number)
            overflow -= saving
    return frozenset(chosen)


def _render(
    issue: IssueContent,
    number: int,
    parts: list[Part],
    segment: Segment,
    shortened: frozenset[int],
    config: Mapping[str, Any],
    slots: Slots,
) -> RenderedSegment:
    base = str(config["BASE_URL"]).rstrip("/")
    views = [
        (
            part.name,
            [
                _view(entry.number, entry.article, base, number, shortened, segment.locale)
                for entry in part.entries
            ],
        )
        for part in parts
    ]
    title = subject(issue.title, number, issue.period, segment.locale)
    context = {
        "issue_title": issue.title,
        "issue_line": issue_line(number, issue.period, segment.locale),
        "subject": title,
        "parts": views,
        "format": segment.format,
        "topics": topic_names(segment.topics, segment.locale, config["TOPICS"]),
        "preheader": " · ".join(view.title for _, items in views for view in items[:1])[:140],
        "sender": config["MAIL_FROM_NAME"],
        "organisation": config.get("ORGANISATION_NAME") or config["MAIL_FROM_NAME"],
        "postal_address": _lines(config.get("POSTAL_ADDRESS")),
        "shortened_count": sum(view.shortened for _, items in views for view in items),
        "slots": slots,
    }
    html, text = render_pair("issue", segment.locale, **context)
    html = inline_css(html)
    return RenderedSegment(
        segment=segment,
        issue_number=number,
        subject=title,
        html=html,
        text=text,
        slots=slots,
        greetings=greetings(segment.locale, slots["name"]),
        # The web copy opens in the edition's language, as the reader's other links do.
        view_online_url=f"{base}/issues/{number}?lang={segment.locale}",
        shortened=tuple(
            Shortened(view.number, view.title)
            for _, items in views
            for view in items
            if view.shortened
        ),
        articles=tuple(view.number for _, items in views for view in items),
    )


def _lines(text: object) -> list[str]:
    """A multi-line setting (the postal address) as its non-empty lines."""
    return [line.strip() for line in str(text or "").splitlines() if line.strip()]


def _view(
    number: int,
    article: ArticleContent,
    base: str,
    issue_number: int,
    shortened: frozenset[int],
    locale: str,
) -> ArticleView:
    # The article page opens in the edition's language, as the reader's other links do (the
    # article itself stays in the language it was written in).
    return ArticleView(
        number=number,
        title=article.title,
        byline=article.byline,
        source=article.source,
        blocks=list(article.blocks),
        excerpt=excerpt(article),
        url=f"{base}/issues/{issue_number}/{number}?lang={locale}",
        shortened=number in shortened,
    )
