"""The sample issues the project ships parse cleanly: the demo sends one, a newcomer the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from issues.importer import parse_issue

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.mark.parametrize(
    ("name", "number", "articles"),
    [("sample-issue.md", 400, 8), ("sample-issue.txt", 400, 8), ("sample-issue-401.md", 401, 6)],
)
def test_each_sample_issue_parses_without_warnings(name: str, number: int, articles: int) -> None:
    """Every sample is a whole issue: its number, every article, nothing to warn about."""
    parsed = parse_issue((SAMPLES / name).read_bytes())
    assert parsed.number == number
    assert sum(len(section.articles) for section in parsed.sections) == articles
    assert parsed.warnings == []
