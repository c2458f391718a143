"""outbound: the contact list — who a campaign calls, read from CSV or JSON.

Why: contact lists come from spreadsheets and CRMs and always hold a few bad rows. One bad row
must not stop a campaign of thousands: the good rows load, and every bad one is reported once
with the file, the row and the field (``contacts.csv row 4, field 'number': 'abc' is not a phone
number``) so the admin can fix exactly that. Only a file that cannot be read at all (missing,
wrong format, no ``id`` or ``number`` column) is a ``CampaignError``.

Numbers are stored normalised (``normalise_number``): the do-not-call list uses the same
function, so ``(555) 123-4567`` and ``555.123.4567`` are the same person to both.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ari_app.outbound.errors import CampaignError

_SEPARATORS = re.compile(r"[\s\-.()]")
_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
RESERVED = ("id", "number", "timezone", "name")


def normalise_number(raw: str) -> str:
    """``+1 (555) 123-4567`` -> ``+15551234567``; ValueError (with the value) if not a number."""
    compact = _SEPARATORS.sub("", raw)
    if not _NUMBER.match(compact):
        digits = sum(c.isdigit() for c in compact)
        if compact.removeprefix("+").isdigit():
            raise ValueError(f"{raw!r} has {digits} digits (3 to 20 needed)")
        raise ValueError(f"{raw!r} is not a phone number")
    return compact


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone (use an IANA name like Europe/Berlin)") from None
    return name


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    number: str
    timezone: str
    name: str | None = None
    data: dict[str, str] = {}

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("is empty")
        return v.strip()

    @field_validator("number")
    @classmethod
    def _number(cls, v: str) -> str:
        return normalise_number(v)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        return check_timezone(v.strip())


@dataclass
class ContactList:
    contacts: list[Contact] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # one per bad row


def _problem(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(row)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (put extra values under 'data')"
        elif err["type"] == "missing":
            msg = "is required"
        parts.append(f"field '{where}': {msg}")
    return "; ".join(parts)


def _scalar(v: Any) -> Any:
    """JSON ids and numbers are often integers; data values may be numbers or booleans."""
    return str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, (int, float)) else v


def _csv_rows(path: Path, default_tz: str) -> list[tuple[str, dict[str, Any] | str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError:
        raise CampaignError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    lowered = [h.lower() for h in header]
    missing = [c for c in ("id", "number") if c not in lowered]
    if missing:
        raise CampaignError(f"{path}: missing required column {', '.join(map(repr, missing))} "
                            f"(the header row has: {', '.join(header) or 'nothing'})")  # fmt: skip
    rows: list[tuple[str, dict[str, Any] | str]] = []
    for values in reader:
        where = f"{path.name} row {reader.line_num}"
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) > len(header):
            rows.append((where, f"has {len(values)} values but the header has {len(header)} columns"))
            continue
        row = dict(zip(lowered, values, strict=False))
        obj: dict[str, Any] = {k: row.get(k, "") for k in ("id", "number")}
        obj["timezone"] = row.get("timezone", "").strip() or default_tz
        if row.get("name", "").strip():
            obj["name"] = row["name"].strip()
        obj["data"] = {
            h: v for h, low, v in zip(header, lowered, values, strict=False) if low not in RESERVED
        }
        rows.append((where, obj))
    return rows


def _json_rows(path: Path, default_tz: str) -> list[tuple[str, dict[str, Any] | str]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CampaignError(f"{path}: not valid JSON: {e}") from None
    if isinstance(doc, dict) and "contacts" in doc:
        doc = doc["contacts"]
    if not isinstance(doc, list):
        raise CampaignError(f'{path}: must hold a list of contacts or {{"contacts": [...]}}')
    rows: list[tuple[str, dict[str, Any] | str]] = []
    for i, item in enumerate(doc):
        where = f"{path.name} [{i}]"
        if not isinstance(item, dict):
            rows.append((where, f"is a {type(item).__name__}, not an object"))
            continue
        obj = {k: _scalar(v) for k, v in item.items()}
        obj["timezone"] = obj.get("timezone") or default_tz
        if isinstance(obj.get("data"), dict):
            obj["data"] = {k: _scalar(v) for k, v in obj["data"].items()}
        rows.append((where, obj))
    return rows


def load_contacts(path: str | Path, default_tz: str) -> ContactList:
    """Read a CSV (header row) or JSON contact file; bad rows are listed in ``errors``."""
    path = Path(path)
    readers = {".csv": _csv_rows, ".json": _json_rows}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise CampaignError(f"{path}: unknown contact file type (use .csv or .json)")
    try:
        rows = reader(path, default_tz)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise CampaignError(f"{path}: cannot read the contact file ({e.strerror})") from None
    except csv.Error as e:
        raise CampaignError(f"{path}: not valid CSV: {e}") from None
    out = ContactList()
    seen: dict[str, str] = {}
    for where, obj in rows:
        if isinstance(obj, str):
            out.errors.append(f"{where}: {obj}")
            continue
        try:
            contact = Contact.model_validate(obj)
        except ValidationError as e:
            out.errors.append(f"{where}, {_problem(e)}")
            continue
        if contact.id in seen:
            out.errors.append(f"{where}, field 'id': {contact.id!r} is already used by {seen[contact.id]}")
            continue
        seen[contact.id] = where.split(" ", 1)[1]  # 'row 3' / '[3]'
        out.contacts.append(contact)
    return out
