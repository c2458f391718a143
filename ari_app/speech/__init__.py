"""Speech: VAD, ASR, TTS, text normalisation, prompt cache and turn-taking for 8 kHz telephone audio.

Heavy engines load only when constructed (``make_vad``, ``make_asr``, ``make_tts``).
"""

from ari_app.speech.errors import SpeechEngineError
from ari_app.speech.settings import SpeechSettings
from ari_app.speech.turn import TurnSettings

__all__ = ["SpeechEngineError", "SpeechSettings", "TurnSettings"]
