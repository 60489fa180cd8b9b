"""Round 3 of bench/unknown_choice.md: the unknown score with the atypicality counted only in its tail, chosen
without fold 5.

    python bench/unknown_inner.py --held-out RUNS/oof-f3 RUNS/oof-f4 \
        --inner-models RUNS/own/inner-s0 ... RUNS/own/inner-s4 --data-dir DIR

Candidates: `F_top(top) x min(1, (1 - F_atyp(atypicality)) / tau)` for each tau of `TAILS` (tau = 1 is the shipped
product), and the maximum probability alone. H: the `--inner-models` (40 classes, folds 1-3, `bench/own_classes.py
base --inner`) tell their 40 classes' fold-4 clips from the other 10 classes' fold-4 clips, with the tables of the
first `--held-out` run's validation clips (fold 3) and the model's temperature. O: the selection data of rounds 1-2
(the two `--held-out` runs' validation folds against the made-up sounds of seed 1, each read against the other's
tables). The rule picks the largest `min(H - 0.85, O - 0.95)`; within `TIE` of it, the larger tau. Prints the
table (markdown) and writes `unknown_inner.json` into `--output-dir`. Fold 5 is never read.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unknown import fold_waveforms, known_labels, made_up_sounds, raw_scores, validation_fold  # noqa: E402

from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402

TAILS = (1.0, 0.5, 0.2, 0.1, 0.05)
AIMS = {"held_out": 0.85, "outside": 0.95}
TIE = 0.002


def candidate_scores(top: np.ndarray, atypicality: np.ndarray, tables: dict) -> dict[str, np.ndarray]:
    """Every candidate's score (higher: more like a known sound) of calibrated top scores and atypicality: the
    model's own `prediction.unknown_score` with each tail."""
    from esc50_hf.model.prediction import unknown_score

    result = {}
    for tail in TAILS:
        tailed = {**tables, "atypicality_tail": tail}
        result[f"tau={tail:g}"] = np.array([unknown_score(t, a, tailed) for t, a in zip(top, atypicality)])
    result["maximum probability"] = np.asarray(top, np.float64)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="whose temperature is used")
    parser.add_argument("--held-out", nargs=2, required=True, metavar="RUN")
    parser.add_argument("--inner-models", nargs="+", required=True, metavar="RUN")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output-dir", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args(argv)

    from esc50_hf.data.esc50 import load_esc50
    from esc50_hf.evaluation.calibration import auroc, fit_unknown_quantiles, rejection_score
    from esc50_hf.model.labels import SAMPLING_RATE

    temperature = json.loads((Path(args.model) / "config.json").read_text())["calibration_temperature"]
    dataset = load_esc50(args.data_dir, SAMPLING_RATE)

    def top_and_atypicality(run: str, waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        logits, atypicality = raw_scores(run, waves)
        return rejection_score(logits, temperature), atypicality

    # O: the out-of-fold models, their validation clips against the made-up sounds of seed 1, cross-fitted tables
    made_up = made_up_sounds(1, SAMPLING_RATE)
    every_made_up = [wave for waves in made_up.values() for wave in waves]
    runs = []
    for run in args.held_out:
        known_waves, _ = fold_waveforms(dataset, validation_fold(run))
        runs.append((top_and_atypicality(run, known_waves), top_and_atypicality(run, every_made_up)))
    tables = [fit_unknown_quantiles(*known) for known, _ in runs]
    outside: dict[str, list[float]] = {}
    for index, (known, unknown) in enumerate(runs):
        known_scores = candidate_scores(*known, tables[1 - index])
        unknown_scores = candidate_scores(*unknown, tables[1 - index])
        for name in known_scores:
            outside.setdefault(name, []).append(auroc(known_scores[name], unknown_scores[name]))

    # H: the inner 40-class models on fold 4, with the first held-out run's tables (its validation fold's clips)
    inner_fold = {validation_fold(run) for run in args.inner_models}
    if len(inner_fold) != 1 or inner_fold & {validation_fold(args.held_out[0])}:
        raise SystemExit("the inner models must share one validation fold, another than the first --held-out run's")
    waves, names = fold_waveforms(dataset, inner_fold.pop())
    held_out: dict[str, list[float]] = {}
    for run in args.inner_models:
        known_classes = known_labels(run)
        is_known = np.array([name in known_classes for name in names])
        scored = candidate_scores(*top_and_atypicality(run, waves), tables[0])
        for name, values in scored.items():
            held_out.setdefault(name, []).append(auroc(values[is_known], values[~is_known]))

    rows = {
        name: {
            "held_out": float(np.mean(held_out[name])),
            "held_out_std": float(np.std(held_out[name])),
            "held_out_splits": [round(value, 4) for value in held_out[name]],
            "outside": float(np.mean(outside[name])),
        }
        for name in held_out
    }
    for row in rows.values():
        row["margin"] = min(row["held_out"] - AIMS["held_out"], row["outside"] - AIMS["outside"])
    best = max(row["margin"] for row in rows.values())
    tails = [name for name in rows if name.startswith("tau=") and rows[name]["margin"] >= best - TIE]
    chosen = max(tails, key=lambda name: float(name[4:])) if tails else max(rows, key=lambda n: rows[n]["margin"])
    lines = [
        f"| candidate | H: held-out classes, fold 4 (mean ± std, {len(args.inner_models)} splits) | "
        "O: outside ESC-50 (selection) | "
        "min(H - 0.85, O - 0.95) |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in rows.items():
        mark = "**" if name == chosen else ""
        lines.append(
            f"| {mark}{name}{mark} | {row['held_out']:.3f} ± {row['held_out_std']:.3f} | {row['outside']:.3f} | "
            f"{row['margin']:+.3f} |"
        )
    print("\n".join(lines))
    print(f"\nchosen: {chosen}")
    report = {"candidates": rows, "chosen": chosen, "inner_models": [Path(run).name for run in args.inner_models]}
    (Path(args.output_dir) / "unknown_inner.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
