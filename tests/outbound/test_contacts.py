"""Contact files: good rows load, every bad row is reported once with file, row and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ari_app.outbound.contacts import load_contacts, normalise_number
from ari_app.outbound.errors import CampaignError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("+1 (555) 123-4567", "+15551234567"), ("555.123.4567", "5551234567"), ("112", "112"),
     ("+49 30 1234 5678", "+493012345678")],
)  # fmt: skip
def test_normalise_number(raw: str, expected: str) -> None:
    assert normalise_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [("abc", "'abc' is not a phone number"), ("12", "'12' has 2 digits (3 to 20 needed)"),
     ("1" * 21, "has 21 digits"), ("++1555", "not a phone number"), ("555 12x", "not a phone number"),
     ("", "not a phone number")],
)  # fmt: skip
def test_not_a_number(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        normalise_number(raw)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_good_and_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "contacts.csv", (
        "id,number,Timezone,name,appt_date,provider\n"          # line 1
        "c1,+1 (555) 123-4567,America/New_York,Ann,2024-06-05,Dr Lee\n"
        "c2,555.123.0002,,Bob,2024-06-06,Dr Kim\n"              # default zone
        "c3,abc,,Cid,2024-06-07,Dr Lee\n"                        # line 4: bad number
        "c4,5551230004,Mars/Olympus,Dee,,\n"                     # line 5: bad zone
        "c1,5551230005,,Eve,,\n"                                 # line 6: duplicate id
        "\n"                                                     # blank line: skipped
        ",5551230006,,Fay,,\n"                                   # line 8: no id
        "c7,5551230007,,Gus,,,extra\n"                           # line 9: too many values
        "c8,12,Mars/Base,,,\n"                                   # line 10: two bad fields, one message
    ))  # fmt: skip
    got = load_contacts(path, "Europe/Berlin")
    assert [c.id for c in got.contacts] == ["c1", "c2"]
    ann, bob = got.contacts
    assert ann.number == "+15551234567" and ann.timezone == "America/New_York" and ann.name == "Ann"
    assert ann.data == {"appt_date": "2024-06-05", "provider": "Dr Lee"}
    assert bob.timezone == "Europe/Berlin"
    assert got.errors == [
        "contacts.csv row 4, field 'number': 'abc' is not a phone number",
        "contacts.csv row 5, field 'timezone': 'Mars/Olympus' is not a time zone (use an IANA name like Europe/Berlin)",
        "contacts.csv row 6, field 'id': 'c1' is already used by row 2",
        "contacts.csv row 8, field 'id': is empty",
        "contacts.csv row 9: has 7 values but the header has 6 columns",
        "contacts.csv row 10, field 'number': '12' has 2 digits (3 to 20 needed); field 'timezone': "
        "'Mars/Base' is not a time zone (use an IANA name like Europe/Berlin)",
    ]


def test_csv_row_numbers_count_physical_lines(tmp_path: Path) -> None:
    """A quoted value spanning two lines: the next row's number is still its line in the file."""
    path = write(tmp_path, "c.csv", '\ufeffid,number,note\nc1,5551230001,"two\nlines"\nc2,x1,\n')
    got = load_contacts(path, "UTC")
    assert got.contacts[0].data == {"note": "two\nlines"}
    assert got.errors == ["c.csv row 4, field 'number': 'x1' is not a phone number"]


def test_csv_missing_required_column(tmp_path: Path) -> None:
    path = write(tmp_path, "contacts.csv", "id,phone\nc1,5551230001\n")
    with pytest.raises(
        CampaignError,
        match=r"contacts.csv: missing required column 'number' \(the header row has: id, phone\)",
    ):
        load_contacts(path, "UTC")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match=r"nope.csv: cannot read the contact file"):
        load_contacts(tmp_path / "nope.csv", "UTC")
    with pytest.raises(CampaignError, match=r"list.xlsx: unknown contact file type"):
        load_contacts(write(tmp_path, "list.xlsx", ""), "UTC")
    (tmp_path / "latin1.csv").write_bytes("id,number,name\nc1,5551230001,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(CampaignError, match=r"latin1\.csv: not UTF-8"):
        load_contacts(tmp_path / "latin1.csv", "UTC")
    with pytest.raises(CampaignError, match=r"bad\.json: not valid JSON"):
        load_contacts(write(tmp_path, "bad.json", "[{"), "UTC")
    with pytest.raises(CampaignError, match=r"obj\.json: must hold a list"):
        load_contacts(write(tmp_path, "obj.json", '{"people": []}'), "UTC")


def test_json_list_and_object_forms(tmp_path: Path) -> None:
    items = [
        {"id": 1, "number": 5551230001, "name": "Ann", "data": {"visits": 3, "vip": True}},
        {"id": "c2", "number": "+44 20 7946 0000", "timezone": "Europe/London"},
        {"id": "c3", "number": "nope"},
        "not an object",
        {"id": "c5", "number": "5551230005", "phone_type": "mobile"},
        {"id": "c2", "number": "5551230006"},
    ]
    for doc in (items, {"contacts": items}):
        got = load_contacts(write(tmp_path, "contacts.json", json.dumps(doc)), "America/Chicago")
        assert [(c.id, c.number, c.timezone) for c in got.contacts] == [
            ("1", "5551230001", "America/Chicago"), ("c2", "+442079460000", "Europe/London")]  # fmt: skip
        assert got.contacts[0].data == {"visits": "3", "vip": "true"}
        assert got.errors == [
            "contacts.json [2], field 'number': 'nope' is not a phone number",
            "contacts.json [3]: is a str, not an object",
            "contacts.json [4], field 'phone_type': unknown field (put extra values under 'data')",
            "contacts.json [5], field 'id': 'c2' is already used by [1]",
        ]


def test_json_missing_number_is_a_row_error(tmp_path: Path) -> None:
    got = load_contacts(write(tmp_path, "c.json", '[{"id": "a"}]'), "UTC")
    assert got.contacts == [] and got.errors == ["c.json [0], field 'number': is required"]
