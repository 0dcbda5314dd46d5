"""Every string a reader or editor can see has a Chinese translation, and pages switch language."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from core.i18n import CATALOGUES
from core.i18n import sentences

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "_l": None,
    "lazy_gettext": None,
    "N_": None,
}


def _method_map(config: str) -> list[tuple[str, str]]:
    lines = (ROOT / config).read_text().splitlines()
    pairs = []
    for line in lines:
        if line.startswith("[") and ":" in line:
            method, pattern = line.strip("[]").split(":", 1)
            pairs.append((pattern.strip(), method.strip()))
    return pairs


@pytest.mark.parametrize(("config", "folder"), [c for c in CATALOGUES if (ROOT / c[0]).exists()])
def test_every_message_has_a_chinese_translation(config: str, folder: str) -> None:
    """Extracting a catalogue's strings finds none without a finished zh translation."""
    po_path = ROOT / folder / "zh" / "LC_MESSAGES" / "messages.po"
    catalog = read_po(io.BytesIO(po_path.read_bytes()))
    # A plural message's id and string are tuples: it counts once every form is translated.
    translated = {
        m.id[0] if isinstance(m.id, tuple) else m.id
        for m in catalog
        if m.id
        and (all(m.string) if isinstance(m.string, tuple) else m.string)
        and "fuzzy" not in m.flags
    }
    found = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(str(ROOT), _method_map(config), keywords=KEYWORDS)
    }
    missing = sorted(found - translated)
    assert found, f"no strings extracted with {config}: are its patterns right?"
    assert missing == [], f"untranslated in {folder}: {missing}"


# The glossary's "not" column and the technical words of ../shared/COPY_zh.md (rules 4 and 9):
# none may appear in a Chinese string a reader or editor sees. 待发送 is "ready" said wrongly;
# 等待发送 (waiting to be sent) is right.
NOT_OUR_WORDS = (
    "偏好", "单封邮件", "期刊", "摘录", "订户", "用户", "话题", "类别", "板块", "注销",
    "取消关注", "推送", "活动", "战役", "抑制", "黑名单", "反弹", "成员", "组织", "机构",
    "上传并解析", "分段", "片段", "条目", "令牌", "字节", "队列", "状态码", "Redis", "Celery",
    "SMTP", "HTML", "投递", "250 OK",
)  # fmt: skip
# The development mail viewer (make demo only) is a tool for developers, who read "HTML".
DEVELOPER_PAGES = ("templates/web/devmail/",)


@pytest.mark.parametrize("folder", [folder for _, folder in CATALOGUES])
def test_chinese_strings_use_the_glossarys_words(folder: str) -> None:
    """No Chinese translation uses a word the glossary says not to, or a technical word."""
    po_path = ROOT / folder / "zh" / "LC_MESSAGES" / "messages.po"
    found = []
    for message in read_po(io.BytesIO(po_path.read_bytes())):
        if not message.id or all(
            where.startswith(DEVELOPER_PAGES) for where, _ in message.locations
        ):
            continue
        text = " ".join(message.string) if isinstance(message.string, tuple) else message.string
        found += [(word, text) for word in NOT_OUR_WORDS if word in text]
        if "待发送" in text.replace("等待发送", ""):
            found.append(("待发送", text))
    assert found == []


def test_pages_are_chinese_by_default_and_english_on_request(client: FlaskClient) -> None:
    """The login page speaks Chinese first; ?lang=en switches, and the choice is remembered."""
    assert "编辑登录" in client.get("/editor/login").get_data(as_text=True)
    english = client.get("/editor/login?lang=en")
    assert "Editor login" in english.get_data(as_text=True)
    assert "Editor login" in client.get("/editor/login").get_data(as_text=True)


def test_sentences_join_as_each_language_writes() -> None:
    """Chinese sentences follow each other directly; English ones take one space."""
    assert (
        sentences("已退订 2 位订阅者。", "另有 1 位无需更改。")
        == "已退订 2 位订阅者。另有 1 位无需更改。"
    )
    assert sentences("2 subscribers unsubscribed.", "1 needed no change.") == (
        "2 subscribers unsubscribed. 1 needed no change."
    )
    assert sentences("真的吗？", "", "是的！", "Yes.") == "真的吗？是的！Yes."
