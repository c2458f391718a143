"""dialog: a new date for one that must change (``differs_from``): a weekday alone that lands on
the appointment's own day means the same weekday a week on; the same date said in full is asked
again. Units on the rule, then the reference reschedule flow against the demo backend."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ari_app.dialog.answers import Rejected
from ari_app.dialog.filling import SAME_DAY_AGAIN, moved_date
from ari_app.dialog.flows import Slot
from ari_app.dialog.nlu import build_understanding
from ari_app.dialog.state import Frame
from ari_app.dialog.templates import SPOKEN_FORMATS
from tests.dialog.harness import run_conversation

NEW_DATE = Slot(type="date", prompt="What day?", differs_from="appt.date")
FRAME = Frame(flow="reschedule_appointment", results={"appt": {"date": "2026-12-10", "time": "10:00"}})


@pytest.mark.parametrize("said", ["Thursday.", "Thursday would be good.", "Next Thursday, please."])
def test_a_weekday_alone_on_the_current_day_is_the_week_after(said: str) -> None:
    assert moved_date(NEW_DATE, FRAME, "2026-12-10", said) == "2026-12-17"


@pytest.mark.parametrize("said", ["December 10th.", "This Thursday.", "Thursday the 10th.", ""])
def test_the_same_date_said_in_full_is_asked_again(said: str) -> None:
    with pytest.raises(Rejected) as e:
        moved_date(NEW_DATE, FRAME, "2026-12-10", said)
    assert str(e.value) == SAME_DAY_AGAIN and e.value.asks


def test_another_day_or_a_slot_without_the_rule_is_left_alone() -> None:
    assert moved_date(NEW_DATE, FRAME, "2026-12-11", "Friday") == "2026-12-11"
    assert moved_date(Slot(type="date", prompt="When?"), FRAME, "2026-12-10", "Thursday") == "2026-12-10"
    # no appointment looked up (yet): nothing to differ from
    assert moved_date(NEW_DATE, Frame(flow="x"), "2026-12-10", "Thursday") == "2026-12-10"


@pytest.mark.models
async def test_the_appointments_weekday_books_the_week_after(backend) -> None:
    """The demo backend's appointment is three days from today; the caller names its weekday."""
    booked = date.today() + timedelta(days=3)
    weekday = booked.strftime("%A")
    week_after = SPOKEN_FORMATS["date"](booked + timedelta(days=7))
    spec = {
        "turns": [
            {"caller": "I need to reschedule my appointment"},
            {"caller": "#5551234567"},
            {"caller": "April 12th 1985", "says": "What day"},
            {"caller": f"{booked.strftime('%B')} {booked.day}", "says": "day you have already"},
            {"caller": f"{weekday} would be good.", "says": week_after},
        ]
    }
    await run_conversation(spec, build_understanding())
