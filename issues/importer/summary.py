"""The summary an article gets when it is imported: its first sentence(s), kept short."""

from __future__ import annotations

import re
from collections.abc import Sequence

from mailer.blocks import Block

# Summaries stop at a sentence end, at most this many characters (Chinese characters).
SUMMARY_CHARS = 120
_SENTENCE_END = re.compile(r"[。！？!?]+[”’」』\"')）]*|\.(?=\s|$)[”’\"')]*")
_CLAUSE_END = re.compile(r"[，；、,;：:]")


def summarise(blocks: Sequence[Block]) -> str:
    """The first sentence(s) of the article, cut at a sentence end, at most 120 characters.

    The first paragraph of some length is used (Chinese before English), and the summary
    is the longest start of it that ends a sentence and fits. When even the first sentence
    is too long, it is cut at the last clause mark that fits and ends in ``…``; a paragraph
    without any sentence end counts as one sentence.
    """
    paragraphs = [b["text"] for b in blocks if b["type"] == "paragraph" and "lang" not in b]
    paragraphs = paragraphs or [b["text"] for b in blocks if b["type"] == "paragraph"]
    text = next((p for p in paragraphs if len(p) >= 20), paragraphs[0] if paragraphs else "")
    text = text.strip()
    ends = _sentence_ends(text) or [len(text)]
    fitting = [end for end in ends if len(text[:end].rstrip()) <= SUMMARY_CHARS]
    return text[: fitting[-1]].rstrip() if fitting else _clipped(text[: ends[0]])


def _sentence_ends(text: str) -> list[int]:
    """Where sentences end, up to the first end past the limit: measuring every start of
    a long paragraph would take as long as the paragraph squared."""
    ends = []
    for match in _SENTENCE_END.finditer(text):
        ends.append(match.end())
        if match.end() > SUMMARY_CHARS:
            break
    return ends


def _clipped(sentence: str) -> str:
    """A sentence too long for a summary, cut at a clause mark if one falls late enough."""
    room = sentence[: SUMMARY_CHARS - 1]
    clauses = [match.start() for match in _CLAUSE_END.finditer(room)]
    cut = clauses[-1] if clauses and clauses[-1] >= SUMMARY_CHARS // 2 else len(room)
    return room[:cut].rstrip() + "…"
