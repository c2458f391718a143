"""Per-turn latency added by running speech on an inference server instead of in the worker.

    .venv/bin/python benchmarks/remote_speech.py [--rounds 1] [--out benchmarks/results]

ASR: 20 utterances synthesised with hibari, through a G.711 µ-law round trip like telephone
audio, each transcribed by the embedded Whisper (the default config: tiny.en, 10 s context) and
by OpenAiAsr against ``ari-app speech serve`` (a subprocess, the same engines) on loopback,
alternately, after a warm-up. TTS: time to first audio and to the last chunk, embedded hibari
(uncached) vs OpenAiTts against the same server. Loopback measures our own overhead (HTTP,
WAV/multipart encoding, clause-by-clause requests, a second process), not a network.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ari_app.speech.asr import Asr, OpenAiAsr, make_asr  # noqa: E402
from ari_app.speech.evaluation import corpus_wer, telephone_channel  # noqa: E402
from ari_app.speech.remote_tts import OpenAiTts  # noqa: E402
from ari_app.speech.settings import AsrSettings, OpenAiAsrSettings, OpenAiTtsSettings, TtsSettings  # noqa: E402
from ari_app.speech.tts import Tts, make_embedded_tts  # noqa: E402
from benchmarks.common.machine import machine_info  # noqa: E402

UTTERANCES = [
    "I want to check my balance.", "Can I speak to an agent please?", "My order never arrived.",
    "I'd like to pay my bill.", "Yes, that's right.", "No, that's not my number.",
    "My account number is four five six seven.", "I need to change my address.",
    "What time do you open tomorrow?", "I want to cancel my subscription.",
    "The internet has been down since this morning.", "Can you send me a new card?",
    "I was charged twice for the same thing.", "Tuesday at three would be great.",
    "Could you repeat that please?", "I'm calling about the delivery on Friday.",
    "My name is Dana Whitfield.", "Please transfer me to billing.",
    "I'd like to make a reservation for two.", "That's all, thank you very much.",
]  # fmt: skip
PROMPTS = [
    "Thank you for calling.",
    "I can help you with billing, orders, or technical support. What would you like to do?",
    "Your balance is $42.50, and your next payment is due on 11/21/2026.",
    "Just to confirm, you would like to move your appointment to Tuesday at 3 PM. Is that right?",
    "Please hold while I transfer you to an agent.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    cmd = [str(REPO / ".venv" / "bin" / "ari-app"), "speech", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"speech server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("speech server did not come up within 180 s")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 1), "p95": round(pct(values, 0.95), 1),
            "mean": round(statistics.fmean(values), 1)}  # fmt: skip


async def time_asr(asr: Asr, pcm: bytes) -> tuple[float, str]:
    t = time.perf_counter()
    text = (await asr.transcribe(pcm)).text
    return (time.perf_counter() - t) * 1000, text


async def time_tts(tts: Tts, text: str) -> tuple[float, float]:
    t = time.perf_counter()
    first = None
    async for _ in tts.synthesize(text):
        first = first or (time.perf_counter() - t) * 1000
    return first or 0.0, (time.perf_counter() - t) * 1000


async def run(args: argparse.Namespace) -> int:
    cache = Path(tempfile.gettempdir()) / "ari-app-bench"
    embedded_asr = make_asr(AsrSettings(), cache)  # the default config's embedded engine
    hibari = make_embedded_tts(TtsSettings(), "hibari")
    clips = [telephone_channel(b"".join([c async for c in hibari.synthesize(u)])) for u in UTTERANCES]
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}/v1"
    remote_asr = OpenAiAsr(OpenAiAsrSettings(base_url=url))
    remote_tts = OpenAiTts(OpenAiTtsSettings(base_url=url))
    asr_rows: list[dict[str, object]] = []
    tts_rows: list[dict[str, object]] = []
    try:
        for pcm in clips[:2]:  # warm-up: first decodes, the keep-alive connection
            await time_asr(embedded_asr, pcm)
            await time_asr(remote_asr, pcm)
            await time_tts(hibari, PROMPTS[0])
            await time_tts(remote_tts, PROMPTS[0])
        for rnd in range(args.rounds):
            for i, (text, pcm) in enumerate(zip(UTTERANCES, clips, strict=True)):
                order = [("embedded", embedded_asr), ("remote", remote_asr)]
                for name, asr in order if (i + rnd) % 2 == 0 else order[::-1]:  # alternate who goes first
                    ms, heard = await time_asr(asr, pcm)
                    asr_rows.append({"engine": name, "round": rnd, "utterance": i, "audio_ms": len(pcm) // 16,
                                     "ms": round(ms, 1), "ref": text, "hyp": heard})  # fmt: skip
            for _ in range(4):
                for i, text in enumerate(PROMPTS):
                    for name, tts in (("embedded", hibari), ("remote", remote_tts)):
                        first, total = await time_tts(tts, text)
                        tts_rows.append({"engine": name, "prompt": i, "first_audio_ms": round(first, 1),
                                         "total_ms": round(total, 1)})  # fmt: skip
    finally:
        await remote_asr.close()
        await remote_tts.close()
        server.terminate()
        server.wait(timeout=30)

    result: dict[str, object] = {"machine": machine_info(), "server": "ari-app speech serve (subprocess, loopback)",
                                 "asr": {}, "tts": {}, "asr_rows": asr_rows, "tts_rows": tts_rows}  # fmt: skip
    for name in ("embedded", "remote"):
        rows = [r for r in asr_rows if r["engine"] == name]
        result["asr"][name] = {**summary([float(r["ms"]) for r in rows]),  # type: ignore[index]
                               "wer": round(corpus_wer([(str(r["ref"]), str(r["hyp"])) for r in rows]), 3)}  # fmt: skip
        rows = [r for r in tts_rows if r["engine"] == name]
        result["tts"][name] = {"first_audio": summary([float(r["first_audio_ms"]) for r in rows]),  # type: ignore[index]
                               "total": summary([float(r["total_ms"]) for r in rows])}  # fmt: skip
    ms = {(r["round"], r["utterance"], r["engine"]): float(r["ms"]) for r in asr_rows}  # type: ignore[arg-type]
    added_asr = [
        ms[(k, i, "remote")] - ms[(k, i, "embedded")]
        for k in range(args.rounds)
        for i in range(len(UTTERANCES))
    ]
    added_tts = [float(r["first_audio_ms"]) for r in tts_rows if r["engine"] == "remote"]
    base_tts = [float(r["first_audio_ms"]) for r in tts_rows if r["engine"] == "embedded"]
    result["added_ms"] = {"asr_paired": summary(added_asr),
                          "tts_first_audio_p50": round(statistics.median(added_tts) - statistics.median(base_tts), 1)}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "remote_speech.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result, args)
    (args.out / "remote_speech.md").write_text(md)
    print(md)
    return 0


def markdown(r: dict, args: argparse.Namespace) -> str:
    m, a, t, add = r["machine"], r["asr"], r["tts"], r["added_ms"]
    lines = [
        "# Speech on an inference server: added latency per turn", "",
        f"{m['date']} · {m['nproc']} CPUs · {m['cpu_model']} · `benchmarks/remote_speech.py` · "
        f"server: {r['server']}", "",
        f"## ASR: {len(UTTERANCES)} hibari utterances through µ-law, x{args.rounds} (ms)", "",
        "| engine | p50 | p95 | mean | WER |", "|---|---|---|---|---|",
        *[f"| {n} | {a[n]['p50']} | {a[n]['p95']} | {a[n]['mean']} | {a[n]['wer']} |" for n in ("embedded", "remote")],
        "", f"Added per utterance (remote − embedded, same audio): p50 {add['asr_paired']['p50']} ms, "
        f"p95 {add['asr_paired']['p95']} ms.", "",
        f"## TTS: {len(PROMPTS)} prompts x 4 (ms)", "",
        "| engine | first audio p50 | first audio p95 | whole prompt p50 | whole prompt p95 |", "|---|---|---|---|---|",
        *[f"| {n} | {t[n]['first_audio']['p50']} | {t[n]['first_audio']['p95']} | {t[n]['total']['p50']} | "
          f"{t[n]['total']['p95']} |" for n in ("embedded", "remote")],
        "", f"Added to first audio (p50): {add['tts_first_audio_p50']} ms.", "",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    os.environ.setdefault("ARI_APP_LOG_LEVEL", "warning")  # the server's request log stays quiet
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
