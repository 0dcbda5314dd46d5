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
