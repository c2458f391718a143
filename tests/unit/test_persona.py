"""Test caller persona: it answers the question the agent asked, whatever order the script has."""

from __future__ import annotations

import asyncio

import numpy as np

from ari_app.testcaller.caller import Dtmf, Silence, Utterance
from ari_app.testcaller.persona import Persona, topic_of


def test_topic_is_the_last_question_asked() -> None:
    assert topic_of("Thanks. And your date of birth?") == "birth"
    assert topic_of("Please say or key in the 10-digit phone number on your account.") == "phone"
    assert topic_of("Is there anything else I can help you with?") == "closing"
    assert topic_of("Thanks for calling. How can I help you today?") == "request"
    assert topic_of("Did you want help with the refund?") == "suggest"
    assert topic_of("Did you want me to book it?") == "confirm"
    assert (
        topic_of("I have 9 AM, 11:30 AM or 2 PM. Which time would you like? You can also press 1") == "time"
    )
    assert topic_of("Sorry, I can't transfer you right now. I can keep helping you here, or you can "
                    "call back later. What would you like to do?") == "request"  # fmt: skip
    assert topic_of("Let me connect you with someone who can help.") == "goodbye"
    assert topic_of("Thanks Dana. I see your appointment on Saturday at 10 AM.") is None


def _persona(said: list[str]) -> Persona:
    heard = iter(said)
    return Persona(
        {"request": ["I need a refund."], "phone": ["five five five", "#5551234567"], "*": [None]},
        hear=lambda pcm: next(heard),
    )


def test_persona_answers_by_topic_rephrases_when_asked_again_and_hangs_up_after_goodbye() -> None:
    p = _persona([
        "How can I help you?", "What's the phone number on your account?",
        "Please say or key in the 10 digit phone number.", "Thanks Dana.", "Are you still there?",
        "Let me connect you with someone who can help.", "",
    ])  # fmt: skip
    audio = np.ones(160, dtype=np.int16)

    async def turns() -> list:
        return [await p.decide(audio) for _ in range(7)]

    out = asyncio.run(turns())
    assert isinstance(out[0][0], Utterance) and out[0][0].text == "I need a refund."
    assert out[1][0].text == "five five five"
    assert out[2] == [Dtmf("5551234567")]  # asked again: the next way of saying it
    assert out[3] == []  # no question yet: keep listening
    assert out[4] == [Silence(7.0)]  # "Thanks Dana. Are you still there?" has no line: the fallback
    assert out[5] == []  # a hand-over: let the agent finish
    assert out[6] is None  # and then silence: hang up
    assert p.heard[-1].startswith("Let me connect you")


def test_a_read_back_is_answered_on_the_same_topic_and_the_keypad_with_keys() -> None:
    said = iter([
        "What's the phone number on your account?",
        "I got 5 5 1. That's 9 digits, and I need 10. Please say the whole number again, a little slower.",
        "Let's try the keypad: please type the 10 digits, then press pound.",
    ])  # fmt: skip
    p = Persona({"phone": ["five five five"], "keypad": ["#5551234567#"]}, hear=lambda pcm: next(said))
    audio = np.ones(160, dtype=np.int16)

    async def turns() -> list:
        return [await p.decide(audio) for _ in range(3)]

    first, again, keys = asyncio.run(turns())
    assert first[0].text == again[0].text == "five five five"
    assert keys == [Dtmf("5551234567#")]


def test_a_keypad_menu_of_requests_is_not_a_keypad_menu_of_times() -> None:
    menu = (
        "I can help with rescheduling your appointment or the refund. You can also press 1 for rescheduling."
    )
    assert topic_of(menu) == "menu"
    assert (
        topic_of("I have 9 AM or 2 PM. Which time would you like? You can also press 1 for the first one.")
        == "time"
    )


def test_a_keypad_menu_heard_with_the_digit_as_a_word_is_still_a_menu() -> None:
    # What Whisper wrote for the agent's menu in the held-out noisy_reschedule call.
    heard = (
        "Sorry, I'm having trouble hearing you. I can help with rescheduling your appointment, the "
        "refund, or your order status. You can also press one for rescheduling your appointment."
    )
    assert topic_of(heard) == "menu"
    assert topic_of("I can help with many things. Press someone for nothing.") != "menu"


def test_a_wrong_suggestion_is_refused_with_the_request_and_a_right_one_confirmed() -> None:
    said = iter(["Did you want help with our address?", "Did you want help with the refund?"])
    p = Persona({"request": ["I need a refund."], "confirm": ["Yes."]}, hear=lambda pcm: next(said),
                wants=("refund",))  # fmt: skip
    audio = np.ones(160, dtype=np.int16)

    async def turns() -> list:
        return [await p.decide(audio) for _ in range(2)]

    out = asyncio.run(turns())
    assert out[0][0].text == "No. I need a refund."
    assert out[1][0].text == "Yes."
