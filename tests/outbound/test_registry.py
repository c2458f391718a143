"""Starting campaigns from their files (what `ari-app campaign run` and the API do), on a real
Redis: contacts the flow cannot run for are reported and skipped, a second start keeps what was
done, and steering a campaign that cannot be steered says why."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml

from ari_app.outbound.errors import CampaignError
from ari_app.outbound.registry import Campaigns
from tests.outbound.conftest import CIPHER

FLOWS = {"appointment_reminder": ["name", "appt_date"]}


def files(tmp: Path, rows: list[str], **spec: object) -> Path:
    (tmp / "people.csv").write_text("id,number,name,appt_date\n" + "\n".join(rows) + "\n")
    body = {"name": "reg-test", "flow": "appointment_reminder", "contacts": "people.csv",
            "caller_id": "5551000", "timezone": "UTC", **spec}  # fmt: skip
    (tmp / "c.yaml").write_text(yaml.safe_dump(body))
    return tmp / "c.yaml"


async def test_contacts_the_flow_cannot_run_for_are_skipped_with_a_reason(
    r: aioredis.Redis, tmp_path
) -> None:
    path = files(tmp_path, ["a,5550101,Maria,2030-03-04", "b,5550102,,2030-03-04", "c,555,Tom,2030-03-04",
                            "d,5550104,Ann,2030-03-04"], voicemail="Hi {name}, about {appt_date:date}. {missing}")  # fmt: skip
    with pytest.raises(CampaignError, match="no contact can be called"):
        await Campaigns(r, "reg", CIPHER).start(
            path, FLOWS
        )  # the voicemail template names a field nobody has
    path = files(tmp_path, ["a,5550101,Maria,2030-03-04", "b,5550102,,2030-03-04", "c,555x,Tom,2030-03-04"],
                 voicemail="Hi {name}, about {appt_date:date}.")  # fmt: skip
    started = await Campaigns(r, "reg", CIPHER).start(path, FLOWS)
    assert started.added == 1, started
    text = "\n".join(started.errors)
    assert "contact 'b', field 'name'" in text, text
    assert "people.csv row 4, field 'number'" in text, text


async def test_a_second_start_keeps_what_was_done_and_adds_new_contacts(r: aioredis.Redis, tmp_path) -> None:
    c = Campaigns(r, "reg2", CIPHER)
    path = files(tmp_path, ["a,5550101,Maria,2030-03-04"])
    assert (await c.start(path, FLOWS)).added == 1
    state = await c.state("reg-test")
    claim = await state.claim_next()
    assert claim is not None
    await c.control("reg-test", "cancel")
    again = await c.start(files(tmp_path, ["a,5550101,Maria,2030-03-04", "b,5550102,Tom,2030-03-04"]), FLOWS)
    assert again.added == 1, again  # b is new; a is known (unchanged)
    assert (await c.status("reg-test")).status == "cancelled"  # cancelled stays cancelled
    assert (await state.contact("a")).attempts == 1  # its attempt is not forgotten


async def test_unknown_campaigns_flows_and_actions_are_clear_errors(r: aioredis.Redis, tmp_path) -> None:
    c = Campaigns(r, "reg3", CIPHER)
    with pytest.raises(CampaignError, match="no campaign named 'nope'"):
        await c.status("nope")
    with pytest.raises(CampaignError, match="'appointment_reminder' is not a loaded flow"):
        await c.start(files(tmp_path, ["a,5550101,Maria,2030-03-04"]), {"other": []})
    await c.start(files(tmp_path, ["a,5550101,Maria,2030-03-04"]), FLOWS)
    with pytest.raises(CampaignError, match="is running: cannot resume"):
        await c.control("reg-test", "resume")
    with pytest.raises(CampaignError, match="unknown action"):
        await c.control("reg-test", "restart")


async def test_without_an_encryption_key_a_campaign_is_refused_before_anything_is_stored(
    r: aioredis.Redis, tmp_path
) -> None:
    from ari_app.session.cipher import RecordCipher
    from ari_app.session.settings import SessionSettings

    path = files(tmp_path, ["a,5550101,Maria,2030-03-04"])
    with pytest.raises(CampaignError, match=r"only stored encrypted; set session\.encryption_key"):
        await Campaigns(r, "nokey", RecordCipher(SessionSettings())).start(path, FLOWS)
    assert not [k async for k in r.scan_iter(match="nokey:*")]
