"""agent: our side of a live call. Speaks text through our own RTP path (so timing and barge-in
are ours), streaming TTS clause by clause into a ``SpeechHandle`` that the floor operates on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ari_app.agent.speech_handle import SpeechHandle
from ari_app.media.transport import MediaTransport
from ari_app.speech.tts import Tts


class Speaker:
    def __init__(self, media: MediaTransport, tts: Tts, clock: Callable[[], float] = time.monotonic) -> None:
        self._media = media
        self._tts = tts
        self._clock = clock

    def say(self, text: str, *, interruptible: bool = True) -> SpeechHandle:
        """Start speaking now; the handle says when it is done and lets the floor pause or stop it."""
        return SpeechHandle(
            self._media, self._tts.synthesize(text), interruptible=interruptible, clock=self._clock
        )
