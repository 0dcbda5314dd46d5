"""``flask --app web issue render``: from a file (nothing stored) or from the database, the
three files written and their sizes printed; bad arguments exit 2 with one sentence."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from issues import store as issues
from issues.models import Issue
from tests.test_segments import SEED
from tests.test_segments import seed


def test_render_from_a_file_writes_three_files_and_stores_nothing(
    runner: FlaskCliRunner, db: Session, tmp_path: Path
) -> None:
    """A file path is parsed in memory: message.eml, body.html and body.txt appear, no issue row."""
    out = tmp_path / "out"
    result = runner.invoke(
        args=[
            "issue",
            "render",
            str(SEED),
            "--topics",
            "policy,data",
            "--format",
            "full",
            "--lang",
            "zh",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    assert db.scalar(select(func.count()).select_from(Issue)) == 0
    email = BytesParser(policy=policy.default).parsebytes((out / "message.eml").read_bytes())
    assert isinstance(email, EmailMessage)
    html = (out / "body.html").read_text()
    # The MIME parts carry the same text with CRLF line ends, as SMTP wants.
    assert email.get_body(("html",)).get_content().replace("\r\n", "\n").strip() == html.strip()
    text = email.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.strip() == (out / "body.txt").read_text().strip()
    assert str(email["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert "示例读者，您好：" in html
    for name in ("message.eml", "body.html", "body.txt"):
        size = (out / name).stat().st_size
        assert f"{name:<12} {size:>9,} bytes" in result.output
    assert "segment data,policy/full/zh" in result.output
    assert "sample recipient" in result.output
    assert "Shortened to excerpts to fit the budget:" in result.output
    assert not list(out.glob(".*.part"))


def test_render_an_issue_from_the_database(
    runner: FlaskCliRunner, db: Session, tmp_path: Path
) -> None:
    """An issue number renders the stored issue; English digest for companies."""
    issues.store_issue(db, seed())
    db.commit()
    result = runner.invoke(
        args=[
            "issue",
            "render",
            "361",
            "--topics",
            "companies",
            "--format",
            "digest",
            "--lang",
            "en",
            "--out",
            str(tmp_path),
        ]
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "body.txt").read_text()
    assert text.startswith("Dear Sample Reader,")
    assert "晶睿电子：获古道资本投资" in text and "2023年国家标准立项指南" not in text
    assert "No article had to be shortened." in result.output


@pytest.mark.parametrize(
    ("arguments", "sentence"),
    [
        (
            ["--topics", "sports"],
            "'sports' is not a topic; the topics are policy, companies, data.",
        ),
        (["--topics", ""], "Choose at least one topic of policy, companies, data."),
        (["--format", "weekly"], "The format must be full or digest, not 'weekly'."),
        (["--lang", "fr"], "The language must be zh or en, not 'fr'."),
    ],
)
def test_bad_options_exit_2_with_one_sentence(
    runner: FlaskCliRunner, tmp_path: Path, arguments: list[str], sentence: str
) -> None:
    """Unknown topics, formats or languages are refused before anything is written."""
    result = runner.invoke(
        args=["issue", "render", str(SEED), "--out", str(tmp_path / "o"), *arguments]
    )
    assert result.exit_code == 2
    assert result.output.strip() == sentence
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("source", "sentence"),
    [
        ("999", "There is no issue 999 in the database; import it or give a file path."),
        (
            "no/such/file.txt",
            "no/such/file.txt is neither an issue number in the database nor an issue file.",
        ),
    ],
)
def test_unknown_source_exits_2(
    runner: FlaskCliRunner, tmp_path: Path, source: str, sentence: str
) -> None:
    """A number that is not stored, or a path that does not exist, is named in one sentence."""
    result = runner.invoke(args=["issue", "render", source, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == sentence
    assert "Traceback" not in result.output


def test_a_file_that_is_not_an_issue_exits_2(runner: FlaskCliRunner, tmp_path: Path) -> None:
    """A binary file is refused with the importer's reason."""
    picture = tmp_path / "cover.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    result = runner.invoke(args=["issue", "render", str(picture), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.startswith(f"{picture} is not an issue file: The file is an image")
    assert not (tmp_path / "o").exists()
