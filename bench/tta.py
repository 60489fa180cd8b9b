"""Does test-time averaging help the shipped CNN? Accuracy and macro-F1 on one fold with and without it.

    python bench/tta.py --model models/esc50-mel-cnn --data-dir /tmp/esc50/ESC-50 --fold 5

Two kinds of averaging of the class probabilities over `n` views of each clip's log-mel:
- rolls: the spectrogram circularly shifted in time by k/n of its length (the training used such rolls);
- crops: n windows of `--crop-fraction` of the frames, evenly spaced (the network pools globally, so
  any length works).
Writes `tta.json` and `TTA.md` into `--output-dir` (default `bench/`). The scores depend on the
model and the data only, not on the machine's load.
"""

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

ROOT = Path(__file__).resolve().parent.parent
from esc50_hf.data.esc50 import TEST_FOLD  # noqa: E402
from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402  (the one default model folder)

VIEWS = (1, 2, 4, 8)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="saved model folder")
    parser.add_argument("--data-dir", default=None, help="ESC-50 folder in the official layout (default: download)")
    parser.add_argument("--fold", type=int, default=5)
    parser.add_argument("--crop-fraction", type=float, default=0.8, help="length of each crop, as a share of the clip")
    parser.add_argument("--output-dir", default=str(ROOT / "bench"))
    return parser.parse_args(argv)


def fold_features(model_dir: str, data_dir: str | None, fold: int) -> tuple[torch.Tensor, np.ndarray]:
    """Normalised log-mels `(clips, mels, frames)` of the fold, through the model's own feature extractor."""
    from esc50_hf.data.esc50 import decoded_mono, load_esc50, split_folds

    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    clips = split_folds(load_esc50(data_dir, extractor.sampling_rate), fold)["validation"]
    waveforms = [decoded_mono(audio) for audio in clips["audio"]]
    features = extractor(waveforms, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_values"]
    return features, np.asarray(clips["label"])


def rolled_views(features: torch.Tensor, views: int) -> list[torch.Tensor]:
    frames = features.shape[-1]
    return [torch.roll(features, shifts=round(k * frames / views), dims=-1) for k in range(views)]


def cropped_views(features: torch.Tensor, views: int, fraction: float) -> list[torch.Tensor]:
    frames = features.shape[-1]
    if views == 1:
        return [features]
    width = round(frames * fraction)
    starts = np.linspace(0, frames - width, views).round().astype(int)
    return [features[..., start : start + width] for start in starts]


@torch.inference_mode()
def averaged_predictions(model: torch.nn.Module, views: list[torch.Tensor], batch_size: int = 64) -> np.ndarray:
    """Class indices from the mean class probabilities over the views."""
    total = 0
    for view in views:
        logits = torch.cat([model(view[i : i + batch_size]).logits for i in range(0, len(view), batch_size)])
        total = total + logits.softmax(dim=-1)
    return total.argmax(dim=-1).numpy()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import esc50_hf  # noqa: F401  (registers the model with the Auto classes)
    from esc50_hf.evaluation.metrics import classification_metrics

    model = AutoModelForAudioClassification.from_pretrained(args.model).eval()
    features, labels = fold_features(args.model, args.data_dir, args.fold)
    rows = []
    for kind in ("rolls", "crops"):
        for views in VIEWS:
            if kind == "crops" and views == 1:
                continue  # the same as one roll: the plain model
            if kind == "rolls":
                chosen = rolled_views(features, views)
            else:
                chosen = cropped_views(features, views, args.crop_fraction)
            scores = classification_metrics(averaged_predictions(model, chosen), labels)
            rows.append({"kind": "none" if views == 1 else kind, "views": views, **scores})
            print(rows[-1], flush=True)
    return {
        "model": _shown_path(args.model),
        "fold": args.fold,
        "clips": len(labels),
        "crop_fraction": args.crop_fraction,
        "results": rows,
    }


def _shown_path(model: str) -> str:
    """A model folder inside the project as a relative path; anything else as given."""
    path = Path(model).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else model


def render_markdown(report: dict[str, Any]) -> str:
    plain = report["results"][0]
    lines = [
        "# Test-time averaging on the shipped CNN",
        "",
        f"Written by `bench/tta.py` (`{report['model']}`, fold {report['fold']}, {report['clips']} clips). "
        "Class probabilities averaged over n views of each clip's log-mel; crops are "
        f"{report['crop_fraction']:.0%} of the clip, evenly spaced.",
        "",
        "| averaging | views | accuracy | macro-F1 | Δ accuracy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report["results"]:
        delta = row["accuracy"] - plain["accuracy"]
        lines.append(f"| {row['kind']} | {row['views']} | {row['accuracy']:.4f} | {row['f1']:.4f} | {delta:+.4f} |")
    best = max(report["results"], key=lambda row: row["accuracy"])
    if best is plain:
        verdict = "No averaging beats the plain model: the shipped model and the app use none."
    else:
        gained = round((best["accuracy"] - plain["accuracy"]) * report["clips"])
        verdict = f"Best here: {best['kind']} over {best['views']} views, {gained} clip(s) of {report['clips']} more."
        if report["fold"] == TEST_FOLD:
            verdict += (
                f" Fold {TEST_FOLD} is the test fold and chooses nothing: averaging would be chosen on another fold "
                "(`--fold 4` with a model trained without it); the shipped model and the app use none."
            )
    return "\n".join([*lines, "", verdict, ""])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = run(args)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "tta.json").write_text(json.dumps(report, indent=2))
    (output / "TTA.md").write_text(render_markdown(report))
    print(f"wrote {output / 'TTA.md'}")


if __name__ == "__main__":
    main()
