"""Do-not-call list: normalised like contacts, shared by every campaign, importable from a file."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from ari_app.outbound.dnc import DncList
from ari_app.outbound.errors import CampaignError
from ari_app.outbound.state import CampaignKeys
from ari_app.session.cipher import CipherUnavailable, RecordCipher
from ari_app.session.settings import SessionSettings
from tests.outbound.conftest import CIPHER


async def test_add_contains_remove_normalised(r: aioredis.Redis, keys: CampaignKeys) -> None:
    dnc = DncList(r, keys, CIPHER)
    assert await dnc.add("+1 (555) 123-4567", "asked on the phone") is True
    assert await dnc.add("+1.555.123.4567", "again") is False  # the same number
    assert await dnc.contains("+15551234567") and await dnc.contains("+1 555 123 4567")
    assert not await dnc.contains("5551234567")  # without the country code it is another string
    assert not await dnc.contains("not a number")
    assert await dnc.reason("+15551234567") == "asked on the phone"  # the first reason stays
    stored = await r.smembers("t:dnc")  # the key the brief names: <prefix>:dnc
    assert stored == {CIPHER.digest("+15551234567").encode()}  # a keyed digest, never the number
    assert not [k for k in await r.hkeys("t:dnc:reasons") if b"555" in k]
    assert await dnc.remove("(+1) 555-123-4567") is True
    assert not await dnc.contains("+15551234567") and await dnc.reason("+15551234567") is None
    with pytest.raises(ValueError, match=r"is not a phone number"):
        await dnc.add("abc", "x")


async def test_import_file(r: aioredis.Redis, keys: CampaignKeys, tmp_path: Path) -> None:
    dnc = DncList(r, keys, CIPHER)
    await dnc.add("5550000001", "earlier")
    path = tmp_path / "register.csv"
    path.write_text("number,added\n# national register, June\n555-000-0001,2024-06-01\n"
                    "(555) 000-0002,2024-06-01\n\n\"555 000 0003\"\nbogus,x\n12\n")  # fmt: skip
    got = await dnc.import_file(path)
    assert got.added == 2  # 0001 was on the list already
    assert got.errors == ["register.csv line 7: 'bogus' is not a phone number",
                          "register.csv line 8: '12' has 2 digits (3 to 20 needed)"]  # fmt: skip
    assert await dnc.size() == 3
    assert await dnc.reason("5550000002") == "imported from register.csv"
    assert await dnc.reason("5550000001") == "earlier"
    with pytest.raises(CampaignError, match=r"missing\.txt: cannot read the do-not-call file"):
        await dnc.import_file(tmp_path / "missing.txt")


async def test_a_rotated_key_and_a_list_an_older_version_wrote_in_clear_still_block(
    r: aioredis.Redis, keys: CampaignKeys
) -> None:
    old = Fernet.generate_key().decode()
    await DncList(r, keys, RecordCipher(SessionSettings(encryption_key=old))).add("5550000009", "x")  # type: ignore[arg-type]
    await r.sadd(keys.dnc, "+15550000008")  # how the list stored numbers before digests
    rotated = RecordCipher(SessionSettings(encryption_key=f"{Fernet.generate_key().decode()},{old}"))  # type: ignore[arg-type]
    dnc = DncList(r, keys, rotated)
    assert await dnc.contains("5550000009") and await dnc.contains("+15550000008")
    assert await dnc.add("5550000009", "again") is False  # already listed under the old key
    assert await dnc.remove("+15550000008") and not await dnc.contains("+15550000008")


def test_without_an_encryption_key_the_list_is_refused_not_stored_in_clear(
    r: aioredis.Redis, keys: CampaignKeys
) -> None:
    with pytest.raises(CipherUnavailable, match=r"session\.encryption_key"):
        DncList(r, keys, RecordCipher(SessionSettings()))
