"""speech (the inference-server side): our embedded engines behind OpenAI's speech endpoints.

``ari-app speech serve`` runs it, so workers with no local models (``speech.asr.engine: openai``,
``speech.tts.engine: openai``) can share one machine's Whisper and TTS over
``POST /v1/audio/transcriptions`` and ``POST /v1/audio/speech``; see docs/remote_speech.md.
"""

from ari_app.speech_server.app import Engines, build_app

__all__ = ["Engines", "build_app"]
