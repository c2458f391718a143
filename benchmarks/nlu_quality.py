"""Quality and speed of the embedded understanding on our own held-out set.

    .venv/bin/python benchmarks/nlu_quality.py [--data benchmarks/data/nlu_heldout.yaml]
        [--classifier hybrid|tfidf] [--threshold 0.35]

Prints: intent accuracy on held-out in-scope phrasings (top intent right AND not rejected),
out-of-scope rejection rate at the threshold, a threshold sweep, entity accuracy per type on
spoken forms, model load / fit time and per-utterance parse time p50/p99.
Targets: intent >= 0.85, entities >= 95 %, parse <= 20 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

from ari_app.dialog.nlu import build_understanding
from ari_app.dialog.nlu.settings import NluSettings

DEFAULT_DATA = Path(__file__).parent / "data" / "nlu_heldout.yaml"


def load(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        sys.exit(f"cannot read held-out set {path}: {e}")
    for key in ("now", "train", "heldout", "out_of_scope", "entities"):
        if key not in data:
            sys.exit(f"held-out set {path} lacks the '{key}' section")
    overlap = {t for v in data["train"].values() for t in v} & {
        t for v in data["heldout"].values() for t in v
    }
    if overlap:
        sys.exit(f"held-out phrasings also in training: {sorted(overlap)}")
    return data


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--classifier", choices=["hybrid", "tfidf"], default="hybrid")
    ap.add_argument("--threshold", type=float, default=NluSettings().oos_threshold)
    args = ap.parse_args()
    data = load(args.data)
    now = datetime.fromisoformat(data["now"])

    t0 = time.perf_counter()
    u = build_understanding(NluSettings(classifier=args.classifier, oos_threshold=args.threshold))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    u.fit(data["train"], data.get("negatives", []))
    fit_s = time.perf_counter() - t0
    n_train = {k: len(v) for k, v in data["train"].items()}
    print(f"classifier: {args.classifier} (embeddings: {u.uses_embeddings}), threshold {args.threshold}")
    print(
        f"intents: {len(n_train)}, training examples per intent: {min(n_train.values())}-"
        f"{max(n_train.values())}, negatives: {len(data.get('negatives', []))}"
    )
    print(f"load {load_s * 1000:.0f} ms, fit {fit_s * 1000:.0f} ms")

    in_scope = [(t, k) for k, v in data["heldout"].items() for t in v]
    oos = list(data["out_of_scope"])
    # Warm-up so the first ONNX run's allocation is not counted as a parse.
    u.parse("warm up", now=now)
    timings: list[float] = []
    results = []
    for text, _ in in_scope + [(t, None) for t in oos]:
        t0 = time.perf_counter()
        parse = u.parse(text, now=now)
        timings.append((time.perf_counter() - t0) * 1000)
        results.append(parse)
    # Two more timing rounds: the box is shared, one round is noisy.
    for _ in range(2):
        for text in [t for t, _ in in_scope] + oos:
            t0 = time.perf_counter()
            u.parse(text, now=now)
            timings.append((time.perf_counter() - t0) * 1000)
    in_results, oos_results = results[: len(in_scope)], results[len(in_scope) :]
    correct = sum(
        1
        for (_, want), p in zip(in_scope, in_results, strict=True)
        if not p.out_of_scope and p.intents[0].name == want
    )
    rejected = sum(p.out_of_scope for p in oos_results)
    print(f"\nintent accuracy (held-out, {len(in_scope)} utterances): {correct / len(in_scope):.3f}")
    print(f"out-of-scope rejected ({len(oos)} utterances): {rejected / len(oos):.3f}")
    misses = [
        f"    {text!r}: want {want}, got "
        + ("out_of_scope" if p.out_of_scope else f"{p.intents[0].name} {p.intents[0].score:.2f}")
        for (text, want), p in zip(in_scope, in_results, strict=True)
        if p.out_of_scope or p.intents[0].name != want
    ]
    misses += [
        f"    {p.text!r}: want out_of_scope, got {p.intents[0].name} {p.intents[0].score:.2f}"
        for p in oos_results
        if not p.out_of_scope
    ]
    if misses:
        print("  errors:\n" + "\n".join(misses))

    print("\nthreshold sweep (accuracy / out-of-scope rejected):")
    classifier = u.classifier
    probs_in = classifier.probabilities([t for t, _ in in_scope])
    probs_oos = classifier.probabilities(oos)
    for threshold in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
        classifier.oos_threshold = threshold
        acc = sum(
            1
            for row, (_, want) in zip(probs_in, in_scope, strict=True)
            if (lambda r: not r[1] and r[0][0].name == want)(classifier._rank(row))
        ) / len(in_scope)
        rej = sum(classifier._rank(row)[1] for row in probs_oos) / len(oos)
        print(f"  {threshold:.2f}: {acc:.3f} / {rej:.3f}")
    classifier.oos_threshold = args.threshold

    print("\nentities (spoken forms):")
    total_ok = total = 0
    entity_failures = []
    for entity_type, cases in data["entities"].items():
        ok = 0
        for text, want in cases:
            got = u.extract(text, entity_type, now=now)
            if got is not None and got.value == want:
                ok += 1
            else:
                entity_failures.append(
                    f"    {entity_type} {text!r}: want {want!r}, got {got.value if got else None!r}"
                )
        total_ok, total = total_ok + ok, total + len(cases)
        print(f"  {entity_type:14s} {ok}/{len(cases)} = {ok / len(cases):.0%}")
    print(f"  {'all':14s} {total_ok}/{total} = {total_ok / total:.1%}")
    if entity_failures:
        print("  errors:\n" + "\n".join(entity_failures))

    print(f"\nload average (shared box): {os.getloadavg()[0]:.2f}")
    print(
        f"parse time per utterance ({len(timings)}): p50 {statistics.median(timings):.1f} ms, "
        f"p99 {percentile(timings, 0.99):.1f} ms, max {max(timings):.1f} ms"
    )


if __name__ == "__main__":
    main()
