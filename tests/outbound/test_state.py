"""Campaign state in Redis: claims are exclusive, outcomes count once, a restart calls nobody twice."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ari_app.outbound.outcomes import Outcome
from ari_app.outbound.state import CampaignKeys, CampaignState
from tests.outbound.conftest import CIPHER, contact, make_spec

T0 = 1_717_580_000.0  # any fixed epoch: the state never reads the clock when given `now`


def state(r: aioredis.Redis, keys: CampaignKeys, **spec: object) -> CampaignState:
    return CampaignState(r, make_spec(**spec), keys, CIPHER)


async def test_load_twice_adds_only_new_contacts(r: aioredis.Redis, keys: CampaignKeys) -> None:
    st = state(r, keys)
    assert await st.load([contact("a"), contact("b")], T0) == (2, 0)
    claim = await st.claim_next(T0)
    assert claim is not None and claim.contact.id == "a" and claim.attempt == 1
    await st.record_outcome("a", claim.attempt_id, Outcome.ANSWERED_HUMAN, now=T0)
    # Reload: a (attempted) keeps its state, b (never attempted) takes the new details, c is new.
    again = [contact("a", "5559999999"), contact("b", "5558888888", name_hint="x"), contact("c")]
    assert await st.load(again, T0 + 10) == (1, 1)
    a, b = await st.contact("a"), await st.contact("b")
    assert a is not None and a.status == "done" and a.attempts == 1 and a.number != "5559999999"
    assert b is not None and b.status == "pending" and b.number == "5558888888"
    assert [x.id for x in await st.results()] == ["a", "b", "c"]
    status = await st.status()
    assert status.counts["pending"] == 2 and status.counts["done"] == 1 and status.status == "running"


async def test_claims_are_exclusive_and_only_due_contacts(r: aioredis.Redis, keys: CampaignKeys) -> None:
    st = state(r, keys)
    await st.load([contact(f"c{i}") for i in range(20)], T0)
    other = state(r, keys)  # a second dialer on the same campaign
    claims = await asyncio.gather(*(s.claim_next(T0) for s in [st, other] * 15))
    got = [c.contact.id for c in claims if c is not None]
    assert len(got) == 20 and len(set(got)) == 20
    assert claims.count(None) == 10
    assert await st.claim_next(T0 - 1) is None  # nothing due before load time either


async def test_retry_with_backoff_until_max_attempts(r: aioredis.Redis, keys: CampaignKeys) -> None:
    st = state(r, keys, retries={"max_attempts": 3, "backoff_s": {"busy": 300, "no_answer": 900}})
    await st.load([contact("a")], T0)
    now = T0
    for attempt, outcome, wait in ((1, Outcome.BUSY, 300), (2, Outcome.NO_ANSWER, 900)):
        claim = await st.claim_next(now)
        assert claim is not None and claim.attempt == attempt
        assert await st.record_outcome("a", claim.attempt_id, outcome, cause=17, now=now) == "deferred"
        res = await st.contact("a")
        assert res is not None and res.next_at == now + wait and res.outcome == outcome.value
        assert await st.claim_next(now + wait - 1) is None  # not before the backoff
        now += wait
    claim = await st.claim_next(now)
    assert claim is not None and claim.attempt == 3
    assert await st.record_outcome("a", claim.attempt_id, Outcome.BUSY, cause=17, now=now) == "failed"
    res = await st.contact("a")
    assert res is not None and res.status == "failed" and res.attempts == 3 and res.cause == 17
    assert await st.claim_next(now + 10_000) is None
    status = await st.status()
    assert status.attempts == 3 and status.outcomes == {"busy": 2, "no_answer": 1}
    assert status.counts["failed"] == 1 and status.remaining == 0


async def test_record_outcome_is_idempotent_per_attempt(r: aioredis.Redis, keys: CampaignKeys) -> None:
    st = state(r, keys)
    await st.load([contact("a")], T0)
    claim = await st.claim_next(T0)
    assert claim is not None
    first = await st.record_outcome("a", claim.attempt_id, Outcome.BUSY, now=T0)
    again = await st.record_outcome("a", claim.attempt_id, Outcome.ANSWERED_HUMAN, now=T0)
    stale = await st.record_outcome("a", "out-some-other-attempt", Outcome.ANSWERED_HUMAN, now=T0)
    assert first == again == stale == "deferred"
    status = await st.status()
    assert status.attempts == 1 and status.outcomes == {"busy": 1}


async def test_answered_result_fields(r: aioredis.Redis, keys: CampaignKeys) -> None:
    st = state(r, keys)
    await st.load([contact("a")], T0)
    claim = await st.claim_next(T0)
    assert claim is not None
    await st.record_outcome("a", claim.attempt_id, Outcome.ANSWERED_MACHINE, session_id="s-1",
                            flow_result={"outcome": "confirmed"}, duration_s=42.5, now=T0)  # fmt: skip
    res = await st.contact("a")
    assert res is not None
    assert (res.status, res.outcome, res.session_id, res.flow_result, res.duration_s, res.attempt_id) == (
        "done", "answered_machine", "s-1", {"outcome": "confirmed"}, 42.5, claim.attempt_id)  # fmt: skip


async def test_release_undoes_a_claim(r: aioredis.Redis, keys: CampaignKeys) -> None:
    st = state(r, keys)
    await st.load([contact("a")], T0)
    claim = await st.claim_next(T0)
    assert claim is not None
    assert await st.release(claim, T0 + 3600, T0)
    assert not await st.release(claim, T0 + 7200, T0)  # once
    res = await st.contact("a")
    assert res is not None and res.status == "pending" and res.attempts == 0 and res.next_at == T0 + 3600
    assert await st.claim_next(T0 + 3599) is None
    assert (await st.status()).counts["dialing"] == 0


async def test_recover_after_a_crash(r: aioredis.Redis, keys: CampaignKeys) -> None:
    """Three contacts left in dialing by a dead dialer: never originated, live, gone."""
    st = state(r, keys)
    await st.load([contact("never"), contact("live"), contact("gone"), contact("later")], T0)
    never, live, gone = [await st.claim_next(T0) for _ in range(3)]
    assert never and live and gone
    assert await st.mark_originating(live, T0) and await st.mark_originating(gone, T0)
    # ...the process dies here. A new one starts:
    fresh = state(r, keys)
    asked: list[str] = []

    async def is_live(attempt_id: str) -> bool:
        asked.append(attempt_id)
        return attempt_id == live.attempt_id

    got = await fresh.recover(is_live, T0 + 5)
    assert (got.returned, got.live, got.interrupted) == (["never"], ["live"], ["gone"])
    assert sorted(asked) == sorted([live.attempt_id, gone.attempt_id])  # "never" needs no question
    gone_res = await fresh.contact("gone")
    assert gone_res is not None and gone_res.status == "interrupted" and gone_res.attempts == 1
    assert "not re-dialled" in gone_res.reason
    # Only "never" and "later" can be claimed again; "gone" never, "live" stays dialing.
    ids = {c.contact.id for c in [await fresh.claim_next(T0 + 10) for _ in range(4)] if c}
    assert ids == {"never", "later"}
    # The late outcome of the dead dialer's attempt on "gone" changes nothing.
    assert (
        await fresh.record_outcome("gone", gone.attempt_id, Outcome.ANSWERED_HUMAN, now=T0) == "interrupted"
    )
    # The live call ends normally (whoever adopted it records it).
    assert await fresh.record_outcome("live", live.attempt_id, Outcome.ANSWERED_HUMAN, now=T0) == "done"
    counts = (await fresh.status()).counts
    assert counts["interrupted"] == 1 and counts["done"] == 1 and counts["dialing"] == 2


async def test_pause_resume_cancel_done(r: aioredis.Redis, keys: CampaignKeys) -> None:
    st = state(r, keys)
    await st.load([contact("a")], T0)
    assert await st.pause("lunch")
    status = await st.status()
    assert (status.status, status.reason) == ("paused", "lunch")
    assert await st.claim_next(T0) is None  # nothing is claimed while paused
    assert not await st.pause("again") and await st.resume()
    assert not await st.mark_done()  # a is still due
    claim = await st.claim_next(T0)
    assert claim is not None
    assert not await st.mark_done()  # a is dialing
    assert await st.pause("x") and not await st.mark_originating(claim, T0)  # paused since the claim
    await st.resume()
    await st.record_outcome("a", claim.attempt_id, Outcome.ANSWERED_HUMAN, now=T0)
    assert await st.mark_done() and (await st.status()).status == "done"
    # New contacts for a done campaign run it again; cancel is final.
    await st.load([contact("b")], T0)
    assert (await st.status()).status == "running"
    assert await st.cancel("wrong list") and not await st.resume()
    assert (await st.status()).status == "cancelled" and await st.claim_next(T0) is None
    await st.load([contact("c")], T0)
    assert (await st.status()).status == "cancelled"


async def test_mark_dnc_is_not_an_attempt(r: aioredis.Redis, keys: CampaignKeys) -> None:
    st = state(r, keys)
    await st.load([contact("a")], T0)
    claim = await st.claim_next(T0)
    assert claim is not None
    assert await st.mark_dnc(claim, "on the do-not-call list", T0) == "dnc"
    res = await st.contact("a")
    assert res is not None and res.status == "dnc" and res.attempts == 0
    assert (await st.status()).attempts == 0


async def test_contact_details_and_flow_results_are_stored_sealed(
    r: aioredis.Redis, keys: CampaignKeys
) -> None:
    st = state(r, keys)
    person = contact("a", "5557654321", name_hint="Grace Hopper")
    await st.load([person], T0)
    assert await st.load([person], T0 + 1) == (0, 0)  # the same details: no update (judged by digest)
    claim = await st.claim_next(T0)
    assert claim is not None and claim.contact == person  # opened for the dialer
    await st.record_outcome("a", claim.attempt_id, Outcome.ANSWERED_HUMAN, flow_result={"said": "Tuesday 3 pm"},
                            now=T0)  # fmt: skip
    raw = b"".join(k + v for k, v in (await r.hgetall(keys.contact("reminders", "a"))).items())
    for leak in (b"7654321", b"Grace", b"Tuesday"):
        assert leak not in raw, leak
    res = await st.contact("a")
    assert res is not None and res.number == person.number and res.flow_result == {"said": "Tuesday 3 pm"}
