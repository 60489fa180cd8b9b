"""Round 2 of bench/robust_recipe_choice.md: how windows of a long input become one answer, chosen on fold 4.

    python bench/robust_recipe/aggregation.py --model /work/runs/oof-f4 --data-dir /tmp/esc50/ESC-50

Builds fold 4's placement sets with bench/robustness.py's own code (a clip at a random offset in 20 s of another
ambient clip of fold 4, ambience 30/20/10 dB below it), computes each window's probabilities and mean power once,
and scores three ways of pooling them: `mean` (by share of real samples), `level` (that times the window's mean
power) and `max` (each class's largest probability). Writes aggregation.json beside this file.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from bench import robustness  # noqa: E402
from esc50_hf.model.windows import WINDOW_POWER_FLOOR, iter_windows  # noqa: E402


def pooled(probabilities: np.ndarray, shares: np.ndarray, powers: np.ndarray) -> dict[str, int]:
    level = shares * (powers + WINDOW_POWER_FLOOR)  # windows.py's own weighting
    return {
        "mean": int(np.argmax(shares @ probabilities)),
        "level": int(np.argmax(level @ probabilities)),
        "max": int(np.argmax(probabilities.max(axis=0))),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--fold", type=int, default=4)
    args = parser.parse_args()
    import torch

    from esc50_hf.inference import SoundClassifier

    torch.set_num_threads(1)
    classifier = SoundClassifier(args.model, batch_size=32)
    rate = classifier.sampling_rate
    waveforms, labels, ambient = robustness.load_fold(args.data_dir, args.fold, rate)
    names = list(classifier.labels)
    table = robustness.corruptions(rate)
    number = next(i for i, c in enumerate(table) if c.family == "placement")
    results = {}
    for severity_index, severity in enumerate(table[number].severities):
        placed = robustness.corrupted_set(table[number], severity_index, waveforms, ambient, number, None)
        hits = {"mean": [], "level": [], "max": []}
        for wave, label in zip(placed, labels):
            windows = list(iter_windows([wave], classifier.clip_samples, classifier.hop_samples))
            probabilities = classifier.window_probabilities([samples for _, samples in windows])
            shares = np.array([len(samples) / classifier.clip_samples for _, samples in windows])
            powers = np.array([float(np.mean(np.square(samples, dtype=np.float64))) for _, samples in windows])
            for way, index in pooled(probabilities, shares, powers).items():
                hits[way].append(names[index] == label)
        results[str(severity)] = {way: float(np.mean(h)) for way, h in hits.items()}
        print(severity, results[str(severity)], flush=True)
    means = {way: float(np.mean([r[way] for r in results.values()])) for way in ("mean", "level", "max")}
    report = {"model": args.model, "fold": args.fold, "by_ambience_snr_db": results, "mean_over_severities": means}
    (HERE / "aggregation.json").write_text(json.dumps(report, indent=2))
    print(means)


if __name__ == "__main__":
    main()
