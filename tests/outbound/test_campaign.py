"""Campaign files: defaults, paths relative to the file, one line per problem naming the key."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path

import pytest

from ari_app.outbound.campaign import load_campaign
from ari_app.outbound.errors import CampaignError
from ari_app.outbound.outcomes import Outcome

GOOD = """\
name: reminders-june
flow: appointment_reminder
contacts: lists/june.csv
caller_id: '"Clinic" <5551000>'
timezone: America/New_York
window: {start: 9:00, end: "20:30", days: [mon, tue, wed, thu, fri]}
retries: {max_attempts: 4, backoff_s: {busy: 120}}
results_webhook: {url: "https://crm.example/results", secret_env: CRM_SECRET}
"""


def write(tmp_path: Path, text: str, name: str = "campaign.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_campaign_with_defaults(tmp_path: Path) -> None:
    spec = load_campaign(write(tmp_path, GOOD))
    assert spec.name == "reminders-june" and spec.flow == "appointment_reminder"
    assert spec.contacts == tmp_path / "lists" / "june.csv"
    assert spec.window.start == time(9, 0) and spec.window.end == time(20, 30)  # 9:00 unquoted is fine
    assert spec.window.days == ("mon", "tue", "wed", "thu", "fri")
    assert (spec.pacing.max_concurrent, spec.pacing.calls_per_second, spec.pacing.inbound_reserve) == (
        2,
        1.0,
        0.25,
    )
    assert spec.retries.max_attempts == 4
    backoff = spec.retries.backoff_s
    assert [backoff.after(o) for o in (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.CONGESTION)] == [
        120,
        900,
        600,
    ]
    assert spec.ring_timeout_s == 30 and spec.voicemail is None and spec.pause_on_failures == 5
    assert spec.amd == "agent"
    assert spec.dial_string("+15551234567") == "Local/+15551234567@ari-app-outbound/n"
    assert spec.results_webhook is not None and spec.results_webhook.secret_env == "CRM_SECRET"
    assert spec.source == str(tmp_path / "campaign.yaml")


def test_json_campaign(tmp_path: Path) -> None:
    doc = {"name": "c1", "flow": "f", "contacts": "/abs/c.json", "caller_id": "5551000", "timezone": "UTC",
           "endpoint": "PJSIP/{number}@trunk", "voicemail": "Please call us back."}  # fmt: skip
    spec = load_campaign(write(tmp_path, json.dumps(doc), "c.json"))
    assert spec.contacts == Path("/abs/c.json") and spec.dial_string("123") == "PJSIP/123@trunk"
    assert spec.voicemail == "Please call us back."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("pacing: {max_concurrent: 0}", "pacing.max_concurrent: must be >= 1"),
        ("pacing: {calls_per_second: 0}", "pacing.calls_per_second: must be > 0"),
        ("pacing: {inbound_reserve: 0.95}", "pacing.inbound_reserve: must be <= 0.9"),
        ("ring_timeout_s: 2", "ring_timeout_s: must be >= 5"),
        ("pacing: {max_conccurent: 3}", "pacing.max_conccurent: unknown key (check the spelling)"),
        ("timezone: Mars/Base", "timezone: 'Mars/Base' is not a time zone"),
        ("window: {start: '21:00', end: '08:00'}", "window: start 21:00 must be before end 08:00"),
        ("window: {start: 8:00:00}", 'window.start: write the time as "HH:MM" (in quotes)'),
        ("window: {days: [mon, someday]}", "window.days: unknown day 'someday'"),
        ("endpoint: PJSIP/trunk", "endpoint: must contain {number}"),
        ("endpoint: PJSIP/{number}@{trunk}", "endpoint: may contain no other {placeholder} than {number}"),
        ("caller_id: Clinic", 'caller_id: must look like "Clinic" <5551000> or 5551000'),
        ("name: Reminders June", "name: 'Reminders June' must match"),
        ("results_webhook: {url: ftp://x, secret_env: S}", "results_webhook.url: must start with http"),
        ("retries: {max_attempts: 0}", "retries.max_attempts: must be >= 1"),
        ("amd: sometimes", "amd: Input should be 'agent', 'asterisk' or 'off'"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, change: str, message: str) -> None:
    key = change.split(":", 1)[0]
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(key + ":")) + "\n" + change
    path = write(tmp_path, text)
    with pytest.raises(CampaignError) as err:
        load_campaign(path)
    assert str(err.value).startswith(f"{path}: {message}"), str(err.value)
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)


def test_missing_keys_are_listed_one_per_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\n")
    with pytest.raises(CampaignError) as err:
        load_campaign(path)
    lines = str(err.value).splitlines()
    assert f"{path}: flow: is required" in lines and f"{path}: timezone: is required" in lines
    assert len(lines) == 4  # flow, contacts, caller_id, timezone


def test_unreadable_campaign_files(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match=r"nope\.yaml: cannot read the campaign file"):
        load_campaign(tmp_path / "nope.yaml")
    with pytest.raises(CampaignError, match=r"c\.toml: unknown campaign file type"):
        load_campaign(write(tmp_path, "", "c.toml"))
    with pytest.raises(CampaignError, match=r"campaign\.yaml: not valid YAML"):
        load_campaign(write(tmp_path, "name: [x"))
    with pytest.raises(CampaignError, match=r"campaign\.yaml: must hold a mapping of keys, not list"):
        load_campaign(write(tmp_path, "- a\n"))


def test_check_flow(tmp_path: Path) -> None:
    spec = load_campaign(write(tmp_path, GOOD))
    spec.check_flow(["billing", "appointment_reminder"])
    with pytest.raises(
        CampaignError,
        match=r"campaign.yaml: flow: 'appointment_reminder' is not a loaded flow \(loaded: billing, faq\)",
    ):
        spec.check_flow({"faq", "billing"})
