"""Subscriber CSV files made in Chinese: column names and values, the template, the skipped lines."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from subscribers import csvfile
from subscribers.csvfile import ImportRow
from subscribers.csvfile import RowError
from subscribers.models import ImportJob
from tests.conftest import LiveServer
from tests.conftest import horizontal_overflow
from tests.conftest import wait_until
from tests.helpers import csrf_token
from tests.helpers import log_in
from tests.helpers import make_editor
from tests.test_subscribe import add_subscriber
from tests.test_subscribe import fresh

TOPICS = ["policy", "companies", "data"]
IMPORT = "/editor/subscribers/import"


def _admin(client: FlaskClient, db: Session) -> None:
    make_editor(db, "admin@newsletter.test", role="admin")
    log_in(client, "admin@newsletter.test")


def _upload(client: FlaskClient, text: str) -> str:
    response = client.post(
        IMPORT,
        data={
            "csrf_token": csrf_token(client, IMPORT),
            "file": (io.BytesIO(text.encode()), "名单.csv"),
            "consent_source": "2024 年会签到表",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return str(response.headers["Location"])


def test_chinese_column_names_and_values_are_read() -> None:
    """邮箱/姓名/单位/主题/格式/语言/会员 with 政策、数据, 摘要, 英文, 是 read as the English ones."""
    text = (
        "邮箱,姓名,单位,主题,格式,语言,会员\n"
        "wang@example.com,王芳,芯源公司,政策、数据,摘要,英文,是\n"
        "li@example.com,李雷,,企业；Data,全文版,中文,否\n"
        "zhao@example.com,,,天气,,,\n"
        "qian@example.com,,,,简报,,\n"
        "sun@example.com,,,,,法文,\n"
    )
    results = [item for _, item in csvfile.parse(text, TOPICS)]
    wang, li = results[0], results[1]
    assert isinstance(wang, ImportRow) and isinstance(li, ImportRow)
    assert (wang.name, wang.organisation, wang.topics, wang.format, wang.locale, wang.member) == (
        "王芳",
        "芯源公司",
        ("data", "policy"),
        "digest",
        "en",
        True,
    )
    assert (li.topics, li.format, li.locale, li.member) == (
        ("companies", "data"),
        "full",
        "zh",
        False,
    )
    assert results[2:] == [
        RowError(4, "topic", "天气"),
        RowError(5, "format", "简报"),
        RowError(6, "language", "法文"),
    ]


def test_the_template_csv_in_both_languages_imports_cleanly(
    client: FlaskClient, db: Session
) -> None:
    """The template to download has the page's column names and an example that imports as is."""
    _admin(client, db)
    page = client.get(IMPORT + "?lang=zh").get_data(as_text=True)
    assert 'href="/editor/subscribers/import/template.csv"' in page and "下载 CSV 模板" in page
    assert "政策、企业、数据" in page
    for lang, first_line in (
        ("zh", "邮箱,姓名,单位,主题,格式,语言,会员"),
        ("en", "email,name,organisation,topics,format,language,member"),
    ):
        response = client.get(f"{IMPORT}/template.csv?lang={lang}")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        text = response.get_data(as_text=True)
        assert text.startswith("\ufeff" + first_line + "\r\n")
        rows = [item for _, item in csvfile.parse(text.lstrip("\ufeff"), TOPICS)]
        assert len(rows) == 1 and isinstance(rows[0], ImportRow), rows
    zh_row = next(
        csvfile.parse(
            client.get(f"{IMPORT}/template.csv?lang=zh").get_data(as_text=True).lstrip("\ufeff"),
            TOPICS,
        )
    )[1]
    assert isinstance(zh_row, ImportRow)
    assert (zh_row.topics, zh_row.format, zh_row.locale, zh_row.member) == (
        ("companies", "policy"),
        "digest",
        "zh",
        True,
    )


def test_the_finished_import_lists_what_was_skipped_and_why(
    client: FlaskClient, db: Session, celery_worker: object
) -> None:
    """After the worker's run the page lists each skipped line with its reason and a way back."""
    _admin(client, db)
    add_subscriber(db, "present@example.com")
    add_subscriber(db, "left@example.com", status="unsubscribed")
    text = (
        "邮箱,姓名,主题,格式\n"
        "new@example.com,新人,数据,摘要\n"
        "present@example.com,,,\n"
        "not-an-address,,,\n"
        "left@example.com,,,\n"
        "other@example.com,,天气,\n"
    )
    status_url = _upload(client, text)
    job_id = int(status_url.rstrip("/").rsplit("/", 1)[1])
    run = client.post(f"{status_url}/run", data={"csrf_token": csrf_token(client, status_url)})
    assert run.status_code == 302

    def finished() -> ImportJob | None:
        job = db.get(ImportJob, job_id, populate_existing=True)
        db.rollback()
        return job if job is not None and job.status == "done" else None

    job = wait_until(finished)
    assert (job.imported, job.skipped) == (1, 4)
    assert fresh(db, "new@example.com").format == "digest"  # type: ignore[union-attr]
    page = client.get(status_url + "?lang=zh").get_data(as_text=True)
    skipped = re.findall(r"<li>(.*?)</li>", page.split('id="skipped"')[1].split("</ul>")[0])
    assert len(skipped) == 4
    assert skipped[0].startswith("第 3 行") and skipped[2].startswith("第 5 行")
    assert "天气" in skipped[3] and "not-an-address" in skipped[1]
    assert 'href="/editor/subscribers/"' in page.split('id="skipped"')[1]
    english = client.get(status_url + "?lang=en").get_data(as_text=True)
    assert "Line 3: already on the list, left as it was" in english
    assert "Line 5: unsubscribed, bounced or blocked: not added back" in english
    assert "Back to the subscribers" in english


def test_import_page_on_a_phone(live_server: LiveServer, page: Any, db: Session) -> None:
    """At 375 px the import page offers the template in Chinese and English without overflow."""
    make_editor(db, "admin@newsletter.test", role="admin")
    page.goto(live_server.url + "/editor/login")
    page.fill("input[name=email]", "admin@newsletter.test")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url("**/editor/")
    for lang, label, first in (
        ("zh", "下载 CSV 模板", "邮箱,姓名"),
        ("en", "Download a template CSV", "email,name"),
    ):
        page.goto(f"{live_server.url}{IMPORT}?lang={lang}")
        assert horizontal_overflow(page) == 0, lang
        with page.expect_download() as download:
            page.get_by_role("link", name=label).click()
        content = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert content.startswith(first)


def _refused(client: FlaskClient, text: str, lang: str) -> str:
    """The import page's answer to an upload it refuses, in ``lang``."""
    response = client.post(
        f"{IMPORT}?lang={lang}",
        data={
            "csrf_token": csrf_token(client, IMPORT),
            "file": (io.BytesIO(text.encode()), "名单.csv"),
            "consent_source": "2024 年会签到表",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_two_columns_for_the_same_field_are_refused(client: FlaskClient, db: Session) -> None:
    """A header with both email and 邮箱 (or 主题 and topics) is refused naming both; no job."""
    _admin(client, db)
    both_emails = "email,姓名,邮箱\na@example.com,王芳,b@example.com\n"
    page = _refused(client, both_emails, "zh")
    assert "“email”和“邮箱”是同一列，请删去其中一列后重新导入。" in page
    both_topics = "邮箱,主题,Topics\na@example.com,政策,数据\n"
    page = _refused(client, both_topics, "en")
    assert "The columns “主题” and “Topics” are the same column." in page
    assert db.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_a_problem_with_a_column_names_it_as_the_file_does(
    client: FlaskClient, db: Session
) -> None:
    """A too long 单位 or a line break in 姓名 is reported under the file's own column names."""
    _admin(client, db)
    text = f'邮箱,姓名,单位\na@example.com,王芳,{"芯" * 201}\nb@example.com,"王\u2028芳",芯源公司\n'
    status_url = _upload(client, text)
    page = client.get(status_url + "?lang=zh").get_data(as_text=True)
    assert "第 2 行：“单位”一栏太长" in page
    assert "第 3 行：“姓名”一栏含有换行或控制字符" in page
    assert "organisation" not in page and "“name”" not in page
    english = client.get(status_url + "?lang=en").get_data(as_text=True)
    assert "Line 2: the “单位” column is too long" in english


def test_full_width_commas_and_semicolons_separate_topics() -> None:
    """政策，数据 and 企业；数据, typed with a Chinese input method, are two topics each."""
    text = "邮箱,主题\na@example.com,政策，数据\nb@example.com,企业；数据\nc@example.com,政策 ， 企业\n"
    rows = [item for _, item in csvfile.parse(text, TOPICS)]
    assert [row.topics for row in rows if isinstance(row, ImportRow)] == [
        ("data", "policy"),
        ("companies", "data"),
        ("companies", "policy"),
    ]
