"""Parse and build SIP messages (RFC 3261 text over UDP) — only what a test peer needs."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

# Compact header forms (RFC 3261 §7.3.3) mapped to their full names.
_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
}


class SipParseError(ValueError):
    """A datagram is not a SIP message we can read; the message says which part is wrong."""


@dataclass
class SipMessage:
    start_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    # ------------------------------------------------------------------ reading
    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        """The request method, or for a response the method from its CSeq."""
        if self.is_request:
            return self.start_line.split(" ", 1)[0]
        return self.cseq[1]

    @property
    def request_uri(self) -> str:
        return self.start_line.split(" ")[1]

    @property
    def status(self) -> int:
        return int(self.start_line.split(" ")[1]) if not self.is_request else 0

    @property
    def reason(self) -> str:
        parts = self.start_line.split(" ", 2)
        return parts[2] if len(parts) > 2 else ""

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        """All values of a header, comma-joined headers kept as they came (we never split Via lists)."""
        want = _canonical(name)
        return [v for k, v in self.headers if _canonical(k) == want]

    @property
    def call_id(self) -> str:
        return self.header("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.header("CSeq") or ""
        num, _, method = raw.strip().partition(" ")
        try:
            return int(num), method.strip()
        except ValueError:
            raise SipParseError(f"CSeq header {raw!r} is not '<number> <method>'") from None

    def headers_dict(self) -> dict[str, str]:
        """Headers by their name as received (first value wins) — handy for X- headers in tests."""
        out: dict[str, str] = {}
        for k, v in self.headers:
            out.setdefault(k, v)
        return out

    # ------------------------------------------------------------------ writing
    def to_bytes(self) -> bytes:
        lines = [self.start_line]
        lines += [f"{k}: {v}" for k, v in self.headers if _canonical(k) != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def _canonical(name: str) -> str:
    n = name.strip().lower()
    return _COMPACT.get(n, n)


def parse_message(data: bytes) -> SipMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("SIP header block is not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    if not (start.startswith("SIP/2.0 ") or start.endswith(" SIP/2.0")):
        raise SipParseError(f"first line {start[:80]!r} is neither a SIP request nor a response")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation line
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"header line {line[:80]!r} has no ':'")
        headers.append((name.strip(), value.strip()))
    msg = SipMessage(start, headers, body)
    length = msg.header("Content-Length")
    if length is not None and length.strip().isdigit():
        msg.body = body[: int(length)]
    return msg


def tag_of(name_addr: str) -> str | None:
    m = re.search(r";\s*tag=([^;>\s]+)", name_addr)
    return m.group(1) if m else None


def uri_of(name_addr: str) -> str:
    """The URI inside a name-addr (``"x" <sip:a@b>;tag=1`` -> ``sip:a@b``)."""
    m = re.search(r"<([^>]+)>", name_addr)
    return m.group(1) if m else name_addr.split(";", 1)[0].strip()


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def response_to(
    request: SipMessage,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> SipMessage:
    """A response copying Via/From/To/Call-ID/CSeq from the request (RFC 3261 §8.2.6)."""
    headers = [(k, v) for k, v in request.headers if _canonical(k) == "via"]
    to = request.header("To") or ""
    if to_tag and tag_of(to) is None:
        to = f"{to};tag={to_tag}"
    headers += [
        ("From", request.header("From") or ""),
        ("To", to),
        ("Call-ID", request.call_id),
        ("CSeq", request.header("CSeq") or ""),
    ]
    headers += extra or []
    return SipMessage(f"SIP/2.0 {status} {reason}", headers, body)
