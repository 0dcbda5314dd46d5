"""CSV import and export: checked lines, a preview that changes nothing, batches run by the worker."""

from __future__ import annotations

import io
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import db as core_db
from subscribers import bulk
from subscribers import csvfile
from subscribers import imports
from subscribers import service
from subscribers.csvfile import ImportRow
from subscribers.models import ConsentEvent
from subscribers.models import ImportJob
from subscribers.models import Subscriber
from subscribers.models import Suppression
from subscribers.service import email_hash
from tests.conftest import wait_until
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh

TOPICS = ["policy", "companies", "data"]
GOOD = """email,name,organisation,topics,format,language,member
new@example.com,新人,某公司,policy;data,,en,yes
"""


def _admin(client: FlaskClient, db: Session) -> None:
    make_editor(db, "admin@newsletter.test", role="admin")
    log_in(client, "admin@newsletter.test")


def _upload(client: FlaskClient, text: str | bytes, consent: str = "2024 年会签到表") -> str:
    data = text.encode() if isinstance(text, str) else text
    response = client.post(
        "/editor/subscribers/import",
        data={
            "csrf_token": csrf_token(client, "/editor/subscribers/import"),
            "file": (io.BytesIO(data), "list.csv"),
            "consent_source": consent,
        },
        content_type="multipart/form-data",
    )
    if response.status_code == 302:
        return client.get(response.headers["Location"]).get_data(as_text=True)
    return response.get_data(as_text=True)


def _count(db: Session, model: type) -> int:
    value = db.scalar(select(func.count()).select_from(model)) or 0
    db.rollback()
    return value


def test_lines_are_checked_with_their_line_numbers() -> None:
    """Each bad line is reported with its own line number and reason; good lines are normalised."""
    text = (
        "Email,Name,Topics,Format,Language,Member\n"
        "A@Example.COM,安,policy;data,digest,en,是\n"
        "not-an-address,,,,,\n"
        "\n"
        "b@example.com,,sport,,,\n"
        "c@example.com,,,weekly,,\n"
        "d@example.com,,,,fr,\n"
        "e@example.com,,,,,maybe\n"
        "a@example.com,,,,,\n"
        '"g@example.com","G\nH",,,,\n'
    )
    results = [item for _, item in csvfile.parse(text, TOPICS)]
    errors = [(r.line, r.code) for r in results if isinstance(r, csvfile.RowError)]
    assert errors == [
        (3, "email"),
        (5, "topic"),
        (6, "format"),
        (7, "language"),
        (8, "member"),
        (9, "duplicate"),
        (11, "control"),
    ]
    [row] = [r for r in results if isinstance(r, ImportRow)]
    assert (row.line, row.email, row.topics, row.format, row.locale, row.member) == (
        2,
        "A@example.com",
        ("data", "policy"),
        "digest",
        "en",
        True,
    )


def test_files_that_cannot_be_read_are_refused_plainly(client: FlaskClient, db: Session) -> None:
    """A file without an email column, or not text at all, gets one sentence and no job."""
    _admin(client, db)
    assert "其中必须有“邮箱”一列" in _upload(client, "name,topics\nA,policy\n")
    assert "既不是 UTF-8 也不是 GB18030" in _upload(client, b"\xff\xfe\x00\x81\x30\x81\xff" * 20)
    assert "请说明同意的来源" in _upload(client, GOOD, consent="")
    assert _count(db, ImportJob) == 0


def test_gb18030_files_from_chinese_excel_are_read(client: FlaskClient, db: Session) -> None:
    """A CSV saved by a Chinese Excel (GB18030) is decoded and previewed."""
    _admin(client, db)
    page = _upload(client, GOOD.encode("gb18030"))
    assert "新人" in page and "预览" in page


def test_preview_counts_and_changes_nothing(client: FlaskClient, db: Session) -> None:
    """The preview counts new, present and refused addresses and lists errors; nothing is inserted."""
    _admin(client, db)
    add_subscriber(db, "present@example.com", name="原名")
    add_subscriber(db, "left@example.com", status="unsubscribed")
    db.add(Suppression(email_hash=email_hash("blocked@example.com"), reason="hard_bounce"))
    db.commit()
    page = _upload(
        client,
        "email,name\nnew@example.com,新\npresent@example.com,改名\nleft@example.com,\n"
        "blocked@example.com,\nbroken,\n",
    )
    counts = dict(re.findall(r'id="count-(\w+)">(\d+)<', page))
    assert counts == {"new": "1", "existing": "1", "blocked": "2", "errors": "1"}
    assert "第 6 行：不是有效的邮箱地址：“broken”" in page
    assert _count(db, Subscriber) == 2 and _count(db, ConsentEvent) == 0


def test_import_runs_in_the_worker_and_never_reactivates(
    client: FlaskClient, db: Session, celery_worker: object
) -> None:
    """Running the import adds only new addresses, as active with the consent source, and reports progress."""
    _admin(client, db)
    add_subscriber(db, "present@example.com", name="原名", topics=("policy",))
    add_subscriber(db, "left@example.com", status="unsubscribed")
    db.add(Suppression(email_hash=email_hash("blocked@example.com"), reason="complaint"))
    db.commit()
    lines = [f"user{n}@example.com,用户{n},,data,,," for n in range(25)]
    text = "email,name,organisation,topics,format,language,member\n" + "\n".join(
        [
            *lines,
            "present@example.com,改名,,data,,,",
            "left@example.com,,,,,,",
            "blocked@example.com,,,,,,",
            "member@example.com,会员,芯片公司,,,zh,yes",
        ]
    )
    page = _upload(client, text)
    job_id = int(re.search(r"/import/(\d+)/run", page).group(1))  # type: ignore[union-attr]
    status_url = f"/editor/subscribers/import/{job_id}"
    run = client.post(f"{status_url}/run", data={"csrf_token": csrf_token(client, status_url)})
    assert run.status_code == 302

    def finished() -> ImportJob | None:
        job = db.get(ImportJob, job_id, populate_existing=True)
        db.rollback()
        return job if job is not None and job.status == "done" else None

    job = wait_until(finished)
    assert (job.imported, job.skipped, job.processed_rows, job.content) == (26, 3, 29, "")
    done = client.get(status_url).get_data(as_text=True)
    assert "导入完成" in done and 'id="count-imported">26<' in done
    assert fresh(db, "present@example.com").name == "原名"  # type: ignore[union-attr]
    assert fresh(db, "left@example.com").status == "unsubscribed"  # type: ignore[union-attr]
    assert fresh(db, "blocked@example.com") is None
    member = fresh(db, "member@example.com")
    assert member is not None
    assert (member.status, member.format, member.member, member.topics) == (
        "active",
        "digest",
        True,
        tuple(sorted(TOPICS)),
    )
    events = db.scalars(select(ConsentEvent).where(ConsentEvent.subscriber_id == member.id)).all()
    assert [(e.action, e.source, e.note, e.actor) for e in events] == [
        ("import", "import", "2024 年会签到表", "admin@newsletter.test")
    ]


def test_an_interrupted_import_resumes_after_its_last_batch(app: Flask, db: Session) -> None:
    """A run that starts again (a redelivered task) skips the lines its committed batches handled."""
    text = "email\n" + "\n".join(f"r{n}@example.com" for n in range(10))
    job = ImportJob(
        created_by="admin@newsletter.test",
        filename="list.csv",
        content=text,
        consent_source="test",
        status="running",
        total_rows=10,
    )
    db.add(job)
    db.commit()
    with app.app_context():
        session = core_db.session()
        # As if a first run had committed the batches for the first four lines, then died.
        rows = [item for _, item in csvfile.parse(text, TOPICS) if isinstance(item, ImportRow)]
        bulk.import_rows(session, rows[:4], imports.consent_for(job), "zh")
        running = session.get(ImportJob, job.id)
        assert running is not None
        running.processed_rows, running.imported = 4, 4
        session.commit()
        finished = imports.run(session, job.id, TOPICS, batch_size=3, locale="zh")
        assert finished is not None
        assert (finished.status, finished.imported, finished.skipped) == ("done", 10, 0)
        assert imports.run(session, job.id, TOPICS, batch_size=3, locale="zh") is None
    assert _count(db, Subscriber) == 10 and _count(db, ConsentEvent) == 10


def test_export_has_the_import_columns_and_round_trips(client: FlaskClient, db: Session) -> None:
    """The export has the import's columns (plus status), defuses formulas, and imports back exactly."""
    _admin(client, db)
    add_subscriber(db, "a@example.com", name="=HYPERLINK(1)", organisation="某公司", member=True)
    add_subscriber(db, "b@example.com", status="unsubscribed", topics=("data",), locale="en")
    response = client.get("/editor/subscribers/export.csv?status=active")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeffemail,name,organisation,topics,format,language,member,status")
    assert "'=HYPERLINK(1)" in text and "b@example.com" not in text
    [row] = [item for _, item in csvfile.parse(text.lstrip("\ufeff"), TOPICS)]
    assert isinstance(row, ImportRow)
    assert (row.email, row.name, row.organisation, row.member) == (
        "a@example.com",
        "=HYPERLINK(1)",
        "某公司",
        True,
    )


def test_a_file_over_the_size_limit_is_refused(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    """A file larger than IMPORT_MAX_BYTES is refused with its limit named, and no job is made."""
    _admin(client, db)
    app.config["IMPORT_MAX_BYTES"] = 1_000_000
    page = _upload(client, GOOD + "x@example.com,\n" * 80_000)
    assert "文件大于 1 MB" in page and _count(db, ImportJob) == 0


def test_classic_mac_line_endings_are_read(client: FlaskClient, db: Session) -> None:
    """A file whose lines end in a bare CR (Excel for Mac's “CSV (Macintosh)”) is previewed."""
    _admin(client, db)
    page = _upload(client, GOOD.replace("\n", "\r") + "second@example.com,,,,,,\r")
    counts = dict(re.findall(r'id="count-(\w+)">(\d+)<', page))
    assert counts == {"new": "2", "existing": "0", "blocked": "0", "errors": "0"}


def test_a_cell_too_long_for_csv_is_refused_plainly(client: FlaskClient, db: Session) -> None:
    """A cell beyond the CSV reader's limit (an unclosed quote, say) gets one sentence, no job."""
    _admin(client, db)
    page = _upload(client, 'email,name\na@example.com,ok\nb@example.com,"' + "x" * 200_000)
    assert "第 3 行" in page and "引号" in page and _count(db, ImportJob) == 0


def test_nul_bytes_and_utf16_are_refused_as_not_text(client: FlaskClient, db: Session) -> None:
    """A file with NUL characters (UTF-16, or binary) is refused as not UTF-8 text; no job."""
    _admin(client, db)
    assert "既不是 UTF-8 也不是 GB18030" in _upload(client, GOOD.encode("utf-16"))
    assert "既不是 UTF-8 也不是 GB18030" in _upload(client, b"email\na@example.com\x00\n")
    assert _count(db, ImportJob) == 0


def test_line_separators_in_names_are_refused() -> None:
    """Unicode line breaks that would make an email unsendable are refused like control characters."""
    text = "email,name\na@example.com,A\u2028B\nb@example.com,C\x85D\n"
    errors = [(r.line, r.code) for _, r in csvfile.parse(text, TOPICS)]
    assert errors == [(2, "control"), (3, "control")]


def test_addresses_that_look_like_formulas_are_defused_and_round_trip(
    client: FlaskClient, db: Session
) -> None:
    """An address starting with = or - is exported quoted, and every value imports back exactly."""
    _admin(client, db)
    add_subscriber(db, "=cmd|'/Ccalc'!A0@example.com", name="'=quoted")
    add_subscriber(db, "-2+3@example.com")
    text = client.get("/editor/subscribers/export.csv").get_data(as_text=True)
    lines = text.lstrip("\ufeff").splitlines()[1:]
    assert all(line.startswith("'") for line in lines), lines
    rows = [item for _, item in csvfile.parse(text.lstrip("\ufeff"), TOPICS)]
    assert {(r.email, r.name) for r in rows if isinstance(r, ImportRow)} == {
        ("=cmd|'/Ccalc'!A0@example.com", "'=quoted"),
        ("-2+3@example.com", None),
    }


def test_previewed_uploads_do_not_outlive_their_purpose(client: FlaskClient, db: Session) -> None:
    """A preview nobody ran is dropped after a day, and erasing a person drops previews naming them."""
    from datetime import timedelta

    from core.db import utcnow

    _admin(client, db)
    _upload(client, "email,name\nold@example.com,旧\n")
    db.execute(ImportJob.__table__.update().values(created_at=utcnow() - timedelta(days=2)))
    db.commit()
    _upload(client, "email,name\nKeep.Me@Example.com,留\nother@example.com,\n")
    db.rollback()
    contents = [job.content for job in db.scalars(select(ImportJob))]
    assert len(contents) == 1 and "Keep.Me@Example.com" in contents[0]
    person = add_subscriber(db, "keep.me@example.com")
    service.erase(db, person, service.Consent(source="editor"), block=False)
    db.commit()
    assert _count(db, ImportJob) == 0


def test_an_import_that_cannot_reach_the_queue_goes_back_to_preview(
    settings: dict[str, object], db: Session
) -> None:
    """Redis down when the editor starts an import: a plain message, and the job can be started again."""
    from core import create_app

    down = create_app({**settings, "REDIS_URL": "redis://127.0.0.1:1/0", "TESTING": True})
    client = down.test_client()
    _admin(client, db)
    _upload(client, GOOD)
    job = db.scalars(select(ImportJob)).one()
    token = csrf_token(client, f"/editor/subscribers/import/{job.id}")
    page = client.post(
        f"/editor/subscribers/import/{job.id}/run",
        data={"csrf_token": token},
        follow_redirects=True,
    )
    assert page.status_code == 200 and "导入没能开始：后台服务暂时连不上。" in page.get_data(
        as_text=True
    )
    db.expire_all()
    assert db.get(ImportJob, job.id).status == "preview"  # type: ignore[union-attr]
