"""The small readers of inbound mail that flufl.bounce does not have.

Each one takes a parsed message and says one thing: how bad a failure is from its status code
and the receiving server's words; whether a message is an automatic reply (RFC 3834's
Auto-Submitted, the X-Autoreply family, and the subjects Chinese and English mail systems give
out-of-office replies); what a Chinese mail system's own bounce says (QQ Mail, Tencent's
business mail and NetEase's 退信 are not RFC 3464 and name the failure in Chinese). They never
raise on a malformed header: a value that cannot be decoded reads as text with replacements.
"""

from __future__ import annotations

import re
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses

# Status codes and reply words that say the address itself is gone (RFC 3463: 5.1.x bad
# mailbox or domain, 5.2.1 disabled); everything else permanent is checked for policy words.
_GONE_STATUS = re.compile(r"^5\.(1\.\d{1,3}|2\.1)$")
# A rejection because of what was sent or where from (spam filters, reputation, policy, a full
# mailbox) is the receiver's verdict on this message, not proof the address is dead: counted
# as temporary, so only SOFT_BOUNCE_LIMIT of them stop a reader's mail.
_NOT_THE_ADDRESS = re.compile(
    r"DT:SPM|\bspam|junk|blacklist|blocklist|block(ed)? |reputation|policy|unsolicited"
    r"|rate limit|too many (connections|messages|recipients)|over (its )?(storage )?quota|quota exceeded|mailbox (is )?full"
    r"|垃圾邮件|空间已满|容量已满|频率",
    re.IGNORECASE,
)
_GONE_WORDS = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|not found"
    r"|invalid (recipient|mailbox|address)|mailbox unavailable|account (is )?disabled"
    r"|用户不存在|地址不存在|收件人不存在",
    re.IGNORECASE,
)
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_REPLY_CODE = re.compile(r"\b([245])\d\d\b")

# RFC 3834 and the headers common mail programs use for automatic replies.
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponse", "x-auto-response")
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit"
    r"|自动回复|自動回覆|自动答复|休假|外出)",
    re.IGNORECASE,
)
_DAEMON_NAME = re.compile(
    r"^(mail delivery (subsystem|system|service)|系统退信|postmaster)", re.IGNORECASE
)
_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)

# Chinese providers' own bounces: 退信 ("returned mail") in the subject or the text, the failed
# address next to 收件人 ("recipient"), and the reason in Chinese or as the SMTP reply quoted.
_CHINESE_BOUNCE = re.compile(r"退信|退回|投递失败|无法投递|未能送达|发送失败")
_CHINESE_GONE = re.compile(
    r"不存在|用户不存在|地址不存在|无效|已被注销|已注销|User not found|Mailbox not found"
    r"|no such user|user unknown|does not exist",
    re.IGNORECASE,
)
_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+")
_RECIPIENT_LINE = re.compile(
    r"(收件人|收信人|Recipient|To)[ \t]*[:：]?[ \t]*[<(（]?[ \t]*"
    r"([^\s<>()（）:：,，]+@[^\s<>()（）,，]+)[>)）\s,，]"
)


def text_of(value: object) -> str:
    """A header's value as text: encoded-words decoded, bad bytes replaced, never raising."""
    if value is None:
        return ""
    raw = str(value)
    try:
        parts = decode_header(raw)
    except (ValueError, LookupError, AssertionError):
        return raw
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "ascii", errors="replace"))
        except LookupError:
            out.append(chunk.decode("utf-8", errors="replace"))
    return "".join(out)


def body_text(message: Message, limit: int = 200_000) -> str:
    """The text of the message's own text/* parts, decoded with their charset (or UTF-8) with
    replacements; a returned or attached message inside is not read (its words are ours)."""
    out: list[str] = []
    size = 0
    for part in _own_parts(message):
        if part.get_content_maintype() != "text" or size > limit:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:
            text = payload.decode("utf-8", errors="replace")
        out.append(text[: limit - size])
        size += len(text)
    return "\n".join(out)


def _own_parts(message: Message, depth: int = 0) -> list[Message]:
    """The parts of a message down its multiparts, not into attached messages, 20 levels deep."""
    if message.get_content_maintype() != "multipart":
        return [message]
    payload = message.get_payload()
    if depth >= 20 or not isinstance(payload, list):
        return []
    return [
        inner
        for part in payload
        if isinstance(part, Message)
        for inner in _own_parts(part, depth + 1)
    ]


def severity(status: str | None, diagnostic: str) -> str:
    """'hard' when the code and words say the address is gone, else 'soft'.

    A 5.x.x status that names the mailbox (5.1.x, 5.2.1) is hard; any other permanent status is
    hard unless the server's words say it refused this message for what it was (spam, policy,
    a full mailbox); 4.x.x is soft. With no status, the reply code in the words decides.
    """
    code = status or ""
    if not code:
        found = _ENHANCED.search(diagnostic)
        code = found.group(1) if found else ""
    if not code:
        reply = _REPLY_CODE.search(diagnostic)
        code = f"{reply.group(1)}.0.0" if reply else "5.0.0"
    if not code.startswith("5."):
        return "soft"
    if _GONE_STATUS.match(code) and not _NOT_THE_ADDRESS.search(diagnostic):
        return "hard"
    if code.startswith(("5.7.", "5.2.2", "5.3.4")) or _NOT_THE_ADDRESS.search(diagnostic):
        return "soft"
    return "hard"


def enhanced_status(text: str) -> str | None:
    found = _ENHANCED.search(text)
    return found.group(1) if found else None


def from_daemon(message: Message) -> bool:
    """Whether the message comes from a mail system rather than a person."""
    senders = getaddresses([text_of(message.get("from"))])
    if any(_DAEMON.match(address) or _DAEMON_NAME.match(name) for name, address in senders):
        return True
    return message.get("return-path", "").strip() in ("<>", "") and bool(
        message.get("x-failed-recipients")
    )


def is_auto_reply(message: Message) -> bool:
    """An automatic answer from a person's mailbox: out of office, vacation, 自动回复."""
    submitted = text_of(message.get("auto-submitted")).strip().lower()
    if submitted.startswith("auto-replied"):
        return True
    if any(message.get(name) for name in _AUTO_HEADERS):
        return True
    if text_of(message.get("x-auto-response-suppress")) and _AUTO_SUBJECT.search(
        text_of(message.get("subject"))
    ):
        return True
    if text_of(message.get("precedence")).strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.search(text_of(message.get("subject"))))


def chinese_bounce(message: Message) -> list[tuple[str, str, str]]:
    """(address, 'hard' or 'soft', reason) for each recipient a Chinese provider's own bounce
    names; empty when the message is not one."""
    subject = text_of(message.get("subject"))
    text = body_text(message, limit=50_000)
    if not (_CHINESE_BOUNCE.search(subject) or _CHINESE_BOUNCE.search(text[:5000])):
        return []
    if not from_daemon(message) and "postmaster" not in text_of(message.get("from")).lower():
        return []
    found = [match.group(2).strip("<>()（）,，.") for match in _RECIPIENT_LINE.finditer(text)]
    addresses = [a for a in dict.fromkeys(found) if _ADDRESS.fullmatch(a)]
    if not addresses:
        return []
    reason = " ".join(text.split())[:1000]
    gone = _CHINESE_GONE.search(text) and not _NOT_THE_ADDRESS.search(text)
    level = "hard" if gone else "soft"
    return [(address, level, reason) for address in addresses]


def refused_for_content(text: str) -> bool:
    """Whether a bounce's own words say the message was refused for what it was or where it
    came from (spam, policy, a full mailbox), not because the address is gone."""
    return bool(_NOT_THE_ADDRESS.search(text)) and not _GONE_WORDS.search(text)
