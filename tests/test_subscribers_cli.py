"""The operator's CSV commands: the same checks as the editor's page, one transaction, exit 2 on a bad file."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers.models import ConsentEvent
from subscribers.models import Subscriber

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "subscribers.csv"


def _emails(db: Session) -> list[str]:
    return sorted(db.scalars(select(Subscriber.email)))


def test_dry_run_reports_and_stores_nothing(runner: FlaskCliRunner, db: Session) -> None:
    """--dry-run lists the refused line with its number and counts, and writes no row."""
    result = runner.invoke(
        args=["subscribers", "import", str(SAMPLE), "--consent", "signup sheet", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "line 8:" in result.output and "not-an-address" in result.output
    assert "6 valid lines, 1 refused: 6 new" in result.output
    assert _emails(db) == []


def test_import_adds_valid_lines_once_with_consent(runner: FlaskCliRunner, db: Session) -> None:
    """Valid lines become active subscribers with a consent event naming the source; a second run adds nothing."""
    first = runner.invoke(
        args=["subscribers", "import", str(SAMPLE), "--consent", "signup sheet 2026-05"]
    )
    assert first.exit_code == 0, first.output
    assert len(_emails(db)) == 6
    assert {s.status for s in db.scalars(select(Subscriber))} == {"active"}
    notes = {event.note for event in db.scalars(select(ConsentEvent))}
    assert notes == {"signup sheet 2026-05"}
    again = runner.invoke(args=["subscribers", "import", str(SAMPLE), "--consent", "again"])
    assert "0 new, 6 already on the list" in again.output
    assert len(_emails(db)) == 6


def test_unsubscribed_addresses_are_not_reactivated(runner: FlaskCliRunner, db: Session) -> None:
    """An address that left stays unsubscribed when a file names it again."""
    runner.invoke(args=["subscribers", "import", str(SAMPLE), "--consent", "sheet"])
    subscriber = db.scalars(
        select(Subscriber).where(Subscriber.email == "chen.jie@example.org")
    ).one()
    subscriber.status = "unsubscribed"
    db.commit()
    result = runner.invoke(args=["subscribers", "import", str(SAMPLE), "--consent", "sheet"])
    assert "1 blocked" in result.output
    db.expire_all()
    assert db.get(Subscriber, subscriber.id).status == "unsubscribed"  # type: ignore[union-attr]


def test_bad_files_and_arguments_exit_2_with_one_sentence(
    runner: FlaskCliRunner, db: Session, tmp_path: Path
) -> None:
    """Binary data, a file without an email column, a missing file or no --consent: exit 2, no traceback."""
    binary = tmp_path / "photo.csv"
    binary.write_bytes(bytes(range(256)) * 10)
    headless = tmp_path / "names.csv"
    headless.write_text("name,topics\n李华,policy\n", encoding="utf-8")
    cases = [
        (["subscribers", "import", str(binary), "--consent", "x"], "neither UTF-8 nor GB18030"),
        (["subscribers", "import", str(headless), "--consent", "x"], "“email”"),
        (["subscribers", "import", str(tmp_path / "missing.csv"), "--consent", "x"], "missing.csv"),
        (["subscribers", "import", str(SAMPLE)], "--consent"),
    ]
    for arguments, expected in cases:
        result = runner.invoke(args=arguments)
        assert result.exit_code == 2, (arguments, result.output)
        assert expected in result.output and "Traceback" not in result.output
    assert _emails(db) == []


def test_export_round_trips_through_import(
    runner: FlaskCliRunner, db: Session, tmp_path: Path
) -> None:
    """What export writes, import reads back to the same subscribers."""
    runner.invoke(args=["subscribers", "import", str(SAMPLE), "--consent", "sheet"])
    exported = runner.invoke(args=["subscribers", "export"])
    assert exported.exit_code == 0
    lines = exported.output.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("email,name,organisation,topics,format,language,member")
    assert len(lines) == 7 and any("李华" in line for line in lines)
    before = {
        (s.email, s.name, s.topics, s.format, s.locale, s.member)
        for s in db.scalars(select(Subscriber))
    }
    for subscriber in db.scalars(select(Subscriber)):
        db.delete(subscriber)
    db.execute(ConsentEvent.__table__.delete())
    db.commit()
    path = tmp_path / "export.csv"
    path.write_text(exported.output, encoding="utf-8")
    result = runner.invoke(args=["subscribers", "import", str(path), "--consent", "round trip"])
    assert result.exit_code == 0, result.output
    after = {
        (s.email, s.name, s.topics, s.format, s.locale, s.member)
        for s in db.scalars(select(Subscriber))
    }
    assert after == before
