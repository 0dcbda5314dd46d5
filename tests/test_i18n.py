"""Every string a reader or editor can see has a Chinese translation, and pages switch language."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from core.i18n import CATALOGUE_PACKAGES

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def _method_map(package: str) -> list[tuple[str, str]]:
    lines = (ROOT / package / "babel.cfg").read_text().splitlines()
    pairs = []
    for line in lines:
        if line.startswith("[") and ":" in line:
            method, pattern = line.strip("[]").split(":", 1)
            pairs.append((pattern.strip(), method.strip()))
    return pairs


@pytest.mark.parametrize(
    "package", [p for p in CATALOGUE_PACKAGES if (ROOT / p / "babel.cfg").exists()]
)
def test_every_message_has_a_chinese_translation(package: str) -> None:
    """Extracting the package's strings finds none without a finished zh translation."""
    po_path = ROOT / package / "translations" / "zh" / "LC_MESSAGES" / "messages.po"
    catalog = read_po(io.BytesIO(po_path.read_bytes()))
    translated = {m.id for m in catalog if m.id and m.string and "fuzzy" not in m.flags}
    found = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(str(ROOT), _method_map(package), keywords=KEYWORDS)
    }
    missing = sorted(found - translated)
    assert found, f"no strings extracted for {package}: is babel.cfg right?"
    assert missing == [], f"untranslated in {package}: {missing}"


def test_pages_are_chinese_by_default_and_english_on_request(client: FlaskClient) -> None:
    """The login page speaks Chinese first; ?lang=en switches, and the choice is remembered."""
    assert "编辑登录" in client.get("/editor/login").get_data(as_text=True)
    english = client.get("/editor/login?lang=en")
    assert "Editor login" in english.get_data(as_text=True)
    assert "Editor login" in client.get("/editor/login").get_data(as_text=True)
