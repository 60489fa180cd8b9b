""""None of these": how well the unknown score tells known sounds from unknown ones, measured two ways.

    python bench/unknown.py --model models/esc50-mel-cnn --held-out RUNS/oof-f3 RUNS/oof-f4 \
        --class-split-models RUNS/base-s0 ... RUNS/base-s4 --data-dir DIR
    python bench/unknown.py --model models/esc50-mel-cnn --class-split-models RUNS/pair-s3 --add-splits --data-dir DIR

Run after `bench/calibration.py` (the model's config then holds the temperature, the unknown score's quantiles and
its threshold, all fitted on out-of-fold predictions of folds 3 and 4, never fold 5).

1. **The selection data** of bench/unknown_choice.md: the out-of-fold models (`--held-out`, each validated on a
   fold other than 5 and made as the shipped model: the CV's fold-3 and fold-4 models of its recipe) score their
   validation fold (known) against made-up sounds of seed 1 (unknown), with the maximum probability, the energy
   score, the atypicality alone and the shipped score (each model's clips read against the other's quantiles).
2. **Held-out classes**: each `--class-split-models` model was trained on 40 classes (folds 1-4,
   `bench/own_classes.py base`, or `pair` for a model of two networks); the fold-5 clips of its 40 classes are the
   known sounds, the fold-5 clips of the other 10 the unknown ones. The shipped model's temperature, quantiles and
   threshold are used as they are (the same recipe). Without `--class-split-models` (the shipped recipe's 40-class
   models still training) the report says this part is pending, and the card's summary leaves it out.
3. **Sounds outside ESC-50** made here (seed 0): speech (espeak-ng), synthetic music, tones and sweeps, silence,
   white and pink noise, hard-clipped tones, music through an 8 kbit/s MP3; the shipped model, against its
   fold-5 clips.

Without `--held-out`, part 1 is carried over from the existing report (the out-of-fold models are not at hand),
and with `--add-splits` the class splits measured earlier stay beside the ones given: both only when the earlier
report used the model's temperature, quantiles and threshold as they are now (a split's pair takes about an hour of
one core per network, two side by side: five splits take longer than one session of this project).

Reports AUROC (of the shipped score, and of the maximum probability beside it) and the share of known sounds
accepted and unknown ones rejected at the fitted threshold. Writes `UNKNOWN.md` and `unknown.json` into
`--output-dir`, and `unknown_results.json` (the card's summary) into the model.
"""

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from own_classes import NUM_SPLITS as CLASS_SPLITS  # noqa: E402

from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402

SOUNDS_PER_KIND = 24
CLIP_SECONDS = 5.0
SENTENCES = (
    "The meeting starts at nine tomorrow morning in the small room.",
    "Please remember to buy bread, milk and a few apples on the way home.",
    "Turn left at the second crossing and follow the road to the station.",
    "I think the weather will be better by the end of the week.",
    "Could you read the last paragraph again, a little more slowly?",
    "Numbers one, two, three, four, five, six, seven, eight, nine, ten.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "The library closes early on Sundays, so come before four o'clock.",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3", "de", "fr", "es", "en-us+f2")


# --- sounds outside ESC-50 -------------------------------------------------------------------------------------


def _fit(wave: np.ndarray, samples: int) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)[:samples]
    return np.pad(wave, (0, samples - len(wave)))


def speech(rng: np.random.Generator, rate: int, count: int) -> list[np.ndarray]:
    """Sentences spoken by espeak-ng in several voices and speeds."""
    if shutil.which("espeak-ng") is None:  # a report without its speech row would read as the same measurement
        raise SystemExit("the speech clips are spoken by espeak-ng, which is not installed: apt-get install espeak-ng")
    clips = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(count):
            path = Path(folder) / f"{index}.wav"
            sentence = SENTENCES[rng.integers(len(SENTENCES))]
            voice = VOICES[rng.integers(len(VOICES))]
            speed = int(rng.integers(120, 190))
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), sentence], check=True)
            wave, source_rate = sf.read(path, dtype="float32")
            clips.append(_fit(_resample(wave, source_rate, rate), int(rate * CLIP_SECONDS)))
    return clips


def _resample(wave: np.ndarray, source: int, target: int) -> np.ndarray:
    from scipy.signal import resample_poly

    return wave if source == target else resample_poly(wave, target, source).astype(np.float32)


def _note(frequency: float, seconds: float, rate: int, harmonics: int = 5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * frequency * k * t) / k**1.5 for k in range(1, harmonics + 1))
    attack = np.minimum(1.0, t / 0.02)
    return (wave * attack * np.exp(-3.0 * t)).astype(np.float32)


def music(rng: np.random.Generator, rate: int, count: int) -> list[np.ndarray]:
    """Melodies over chords: notes of a major scale with harmonics and decaying envelopes."""
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    clips = []
    for _ in range(count):
        root = 220.0 * 2 ** (rng.integers(-5, 6) / 12)
        beat = rng.uniform(0.18, 0.45)
        wave = np.zeros(int(rate * CLIP_SECONDS), np.float32)
        start = 0
        while start < len(wave):
            frequency = root * 2 ** (scale[rng.integers(len(scale))] / 12) * 2
            chord = sum(_note(root * 2 ** (step / 12), beat * 4, rate, 3) for step in (0, 4, 7))
            piece = _note(frequency, beat * 2, rate)
            end = min(len(wave), start + len(piece))
            wave[start:end] += 0.5 * piece[: end - start]
            if (start // int(beat * rate)) % 4 == 0:
                end = min(len(wave), start + len(chord))
                wave[start:end] += 0.2 * chord[: end - start]
            start += int(beat * rate)
        clips.append(0.5 * wave / np.abs(wave).max())
    return clips


def tones(rng: np.random.Generator, rate: int, count: int) -> list[np.ndarray]:
    """Pure tones and sine sweeps (half each), 100 Hz to 5 kHz."""
    t = np.arange(int(rate * CLIP_SECONDS)) / rate
    clips = []
    for index in range(count):
        if index % 2 == 0:
            wave = np.sin(2 * np.pi * rng.uniform(100, 5000) * t)
        else:
            low, high = sorted(rng.uniform(100, 5000, 2))
            phase = 2 * np.pi * (low * t + (high - low) * t**2 / (2 * CLIP_SECONDS))
            wave = np.sin(phase)
        clips.append((rng.uniform(0.05, 0.5) * wave).astype(np.float32))
    return clips


def silence(rng: np.random.Generator, rate: int, count: int) -> list[np.ndarray]:
    """Digital silence, and near-silence (noise at -90 to -70 dBFS)."""
    samples = int(rate * CLIP_SECONDS)
    clips = []
    for index in range(count):
        level = 0.0 if index % 2 == 0 else 10 ** (rng.uniform(-90, -70) / 20)
        clips.append((level * rng.standard_normal(samples)).astype(np.float32))
    return clips


def _pink(rng: np.random.Generator, samples: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    wave = np.fft.irfft(spectrum, samples)
    return wave / np.abs(wave).max()


def white_noise(rng: np.random.Generator, rate: int, count: int) -> list[np.ndarray]:
    samples = int(rate * CLIP_SECONDS)
    return [
        np.clip(rng.uniform(0.01, 0.3) * rng.standard_normal(samples), -1, 1).astype(np.float32) for _ in range(count)
    ]


def pink_noise(rng: np.random.Generator, rate: int, count: int) -> list[np.ndarray]:
    samples = int(rate * CLIP_SECONDS)
    return [(rng.uniform(0.05, 0.8) * _pink(rng, samples)).astype(np.float32) for _ in range(count)]


def clipped(rng: np.random.Generator, rate: int, count: int) -> list[np.ndarray]:
    """Tones and melodies driven 20-40 dB into hard clipping."""
    sources = tones(rng, rate, count // 2) + music(rng, rate, count - count // 2)
    return [np.clip(wave * 10 ** (rng.uniform(20, 40) / 20), -0.9, 0.9).astype(np.float32) for wave in sources]


def compressed(rng: np.random.Generator, rate: int, count: int) -> list[np.ndarray]:
    """Synthetic music through an 8 kbit/s MP3 (libmp3lame, 8 kHz), decoded back."""
    clips = []
    with tempfile.TemporaryDirectory() as folder:
        for index, wave in enumerate(music(rng, rate, count)):
            source, encoded = Path(folder) / f"{index}.wav", Path(folder) / f"{index}.mp3"
            sf.write(source, wave, rate)
            subprocess.run(
                ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-ar", "8000", "-b:a", "8k", str(encoded)],
                check=True,
            )
            decoded = subprocess.run(
                ["ffmpeg", "-v", "error", "-i", str(encoded), "-f", "f32le", "-ac", "1", "-ar", str(rate), "-"],
                check=True,
                capture_output=True,
            ).stdout
            clips.append(_fit(np.frombuffer(decoded, np.float32), int(rate * CLIP_SECONDS)))
    return clips


KINDS: dict[str, Callable[[np.random.Generator, int, int], list[np.ndarray]]] = {
    "speech": speech,
    "music": music,
    "tones and sweeps": tones,
    "silence": silence,
    "white noise": white_noise,
    "pink noise": pink_noise,
    "clipped": clipped,
    "8 kbit/s MP3 music": compressed,
}


def made_up_sounds(seed: int, rate: int, count: int = SOUNDS_PER_KIND) -> dict[str, list[np.ndarray]]:
    """Every kind of sound outside ESC-50, `count` clips each."""
    return {
        kind: make(np.random.default_rng([seed, number]), rate, count)
        for number, (kind, make) in enumerate(KINDS.items())
    }


# --- scoring ---------------------------------------------------------------------------------------------------


def raw_scores(model_dir: str | Path, waveforms: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The model's logits before calibration and its atypicality (`Esc50CnnOutput`) for 5-s waveforms at its rate."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from esc50_hf.evaluation.scoring import predict_feature_logits
    from esc50_hf.model.configuration_esc50_cnn import UNCALIBRATED

    model = AutoModelForAudioClassification.from_pretrained(model_dir, **UNCALIBRATED)
    extractor = AutoFeatureExtractor.from_pretrained(model_dir)
    features = extractor(waveforms, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_values"]
    return predict_feature_logits(model, features, atypicality=True)


def fold_waveforms(dataset: Any, fold: int, classes: set[str] | None = None) -> tuple[list[np.ndarray], list[str]]:
    from esc50_hf.data.esc50 import decoded_mono, split_folds

    clips = split_folds(dataset, fold)["validation"]
    names = clips.features["label"].names
    rows = [(decoded_mono(row["audio"]), names[row["label"]]) for row in clips]
    return [wave for wave, name in rows if classes is None or name in classes], [
        name for _, name in rows if classes is None or name in classes
    ]


def validation_fold(run: str | Path) -> int:
    """The fold `run` was validated on (its recipe, `training_config.json`); the test fold is refused: the selection
    data must not read it."""
    from esc50_hf.data.esc50 import TEST_FOLD
    from esc50_hf.training.model_folder import read_model_folder

    fold = int(read_model_folder(run, require=("training_config.json",)).recipe["validation_fold"])
    if fold == TEST_FOLD:
        raise SystemExit(f"{run} validated on fold {TEST_FOLD}: the selection must not read it")
    return fold


def known_labels(run: str | Path) -> set[str]:
    """The labels the model of `run` was trained on (its config's `id2label`)."""
    from esc50_hf.training.model_folder import read_model_folder

    return set(read_model_folder(run, require=("config.json",)).config["id2label"].values())


def scores(scored: tuple[np.ndarray, np.ndarray], temperature: float, quantiles: dict) -> dict[str, np.ndarray]:
    """Every score of the selection (higher: more like a known sound) of `(logits, atypicality)`."""
    from esc50_hf.evaluation.calibration import rejection_score, unknown_scores

    logits, atypicality = scored
    return {
        "max_probability": rejection_score(logits, temperature),
        "energy": rejection_score(logits, temperature, "energy"),
        "atypicality": -atypicality,
        "unknown_score": unknown_scores(logits, temperature, atypicality, quantiles),
    }


def separation(known: np.ndarray, unknown: np.ndarray, threshold: float | None) -> dict[str, float]:
    from esc50_hf.evaluation.calibration import auroc

    row = {"auroc": auroc(known, unknown), "known": int(len(known)), "unknown": int(len(unknown))}
    if threshold is not None:
        row["known_accepted"] = float((known >= threshold).mean())
        row["unknown_rejected"] = float((unknown < threshold).mean())
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--held-out", nargs=2, metavar="RUN", help="none: part 1 is the earlier report's")
    parser.add_argument("--class-split-models", nargs="*", default=[], metavar="RUN", help="none: pending")
    parser.add_argument("--add-splits", action="store_true", help="keep the earlier report's other class splits")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output-dir", default=str(ROOT / "bench"))
    args = parser.parse_args(argv)

    from esc50_hf.data.esc50 import TEST_FOLD, load_esc50
    from esc50_hf.evaluation.calibration import fit_unknown_quantiles, rejection_score
    from esc50_hf.model.labels import SAMPLING_RATE
    from esc50_hf.model.prediction import atypicality_tail

    config = json.loads((Path(args.model) / "config.json").read_text())
    temperature, threshold = config["calibration_temperature"], config["unknown_threshold"]
    quantiles = config.get("unknown_quantiles")
    if quantiles is None:
        print(f"{args.model} has no unknown_quantiles: run `esc50-hf calibrate` with its out-of-fold runs first.")
        return 1
    today = datetime.date.today().isoformat()
    earlier = earlier_report(Path(args.output_dir) / "unknown.json", config)
    if earlier is None and not args.held_out:
        print(f"{args.output_dir}/unknown.json was not made with {args.model}'s calibration as it is now: give "
              "--held-out (the out-of-fold models) to measure the selection data again.")  # fmt: skip
        return 1
    if earlier is None and args.add_splits:
        print("--add-splits: the earlier report used another calibration, none of its class splits is kept")
    dataset = load_esc50(args.data_dir, SAMPLING_RATE)

    # 1. the selection data (bench/unknown_choice.md): the out-of-fold models against made-up sounds of seed 1; the
    # unknown score reads each model's clips against the quantiles of the *other* model's known clips (cross-fitted)
    selection_kinds = made_up_sounds(1, SAMPLING_RATE)
    runs = []
    for run in args.held_out or []:
        known_waves, _ = fold_waveforms(dataset, validation_fold(run))
        made_up = {kind: raw_scores(run, waves) for kind, waves in selection_kinds.items()}
        runs.append((raw_scores(run, known_waves), made_up))
    selection: dict[str, dict[str, list[float]]] = {}
    for index, (known, kinds) in enumerate(runs):
        other_logits, other_atypicality = runs[1 - index][0]
        tables = fit_unknown_quantiles(rejection_score(other_logits, temperature), other_atypicality)
        known_scores = scores(known, temperature, tables)
        unknown_scores_by_kind = {kind: scores(scored, temperature, tables) for kind, scored in kinds.items()}
        for name in known_scores:
            every = np.concatenate([by_kind[name] for by_kind in unknown_scores_by_kind.values()])
            row = selection.setdefault(name, {"all": []})
            row["all"].append(separation(known_scores[name], every, None)["auroc"])
            for kind, by_kind in unknown_scores_by_kind.items():
                row.setdefault(kind, []).append(separation(known_scores[name], by_kind[name], None)["auroc"])
    if args.held_out:
        selection_report = {
            "runs": [str(Path(run).name) for run in args.held_out],
            "auroc": {name: {key: float(np.mean(v)) for key, v in row.items()} for name, row in selection.items()},
            "date": today,
        }
    else:
        selection_report = {"date": earlier["date"], **earlier["selection"]}
    print("selection AUROC:", {name: round(row["all"], 3) for name, row in selection_report["auroc"].items()})

    # 2. held-out classes, fold 5: the shipped model's temperature, quantiles and threshold (the same recipe)
    splits = []
    for run in args.class_split_models:
        known_classes = known_labels(run)
        waves, names = fold_waveforms(dataset, TEST_FOLD)
        scored = scores(raw_scores(run, waves), temperature, quantiles)
        is_known = np.array([name in known_classes for name in names])
        row = separation(scored["unknown_score"][is_known], scored["unknown_score"][~is_known], threshold)
        row["max_probability_auroc"] = separation(
            scored["max_probability"][is_known], scored["max_probability"][~is_known], None
        )["auroc"]
        row["unknown_classes"] = sorted({name for name in names if name not in known_classes})
        row["split"] = Path(run).name
        row["num_networks"] = json.loads((Path(run) / "config.json").read_text()).get("num_networks", 1)
        row["date"] = today
        splits.append(row)
        print(row["split"], f"AUROC {row['auroc']:.3f} (max probability {row['max_probability_auroc']:.3f})")
    if args.add_splits and earlier is not None:
        measured = {row["split"] for row in splits}
        kept = [row for row in earlier["held_out_classes"]["splits"] if row["split"] not in measured]
        splits = sorted(kept + splits, key=lambda row: row["split"])

    # 3. sounds outside ESC-50 against the shipped model's fold 5
    known_waves, _ = fold_waveforms(dataset, TEST_FOLD)
    known = scores(raw_scores(args.model, known_waves), temperature, quantiles)
    kinds, every = {}, {"unknown_score": [], "max_probability": []}
    for kind, waves in made_up_sounds(0, SAMPLING_RATE).items():
        scored = scores(raw_scores(args.model, waves), temperature, quantiles)
        kinds[kind] = separation(known["unknown_score"], scored["unknown_score"], threshold)
        kinds[kind]["max_probability_auroc"] = separation(known["max_probability"], scored["max_probability"], None)[
            "auroc"
        ]
        for name in every:
            every[name].append(scored[name])
        print(kind, kinds[kind])
    outside = separation(known["unknown_score"], np.concatenate(every["unknown_score"]), threshold)
    outside["max_probability_auroc"] = separation(
        known["max_probability"], np.concatenate(every["max_probability"]), None
    )["auroc"]

    summary_split = (
        {
            "auroc_mean": float(np.mean([row["auroc"] for row in splits])),
            "auroc_std": float(np.std([row["auroc"] for row in splits])),
            "max_probability_auroc_mean": float(np.mean([row["max_probability_auroc"] for row in splits])),
            "known_accepted_mean": float(np.mean([row["known_accepted"] for row in splits])),
            "unknown_rejected_mean": float(np.mean([row["unknown_rejected"] for row in splits])),
        }
        if splits
        else {}
    )
    report = {
        "date": today,
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "temperature": temperature,
        "threshold": threshold,
        "atypicality_tail": atypicality_tail(quantiles),
        "fitted_on": config["calibration"]["fitted_on"],
        "quantiles": quantiles,
        "selection": selection_report,
        "held_out_classes": {"splits": splits, **summary_split},
        "outside_esc50": {"all": outside, "kinds": kinds, "per_kind": SOUNDS_PER_KIND},
    }
    output = Path(args.output_dir)
    (output / "unknown.json").write_text(json.dumps(report, indent=2))
    (output / "UNKNOWN.md").write_text(render(report))
    card = card_results(report)
    (Path(args.model) / "unknown_results.json").write_text(json.dumps(card, indent=2))
    print((output / "UNKNOWN.md").read_text())
    return 0


def card_results(report: dict[str, Any]) -> dict[str, Any]:
    """What the model card shows of the report (`unknown_results.json`): a sentence and the figures behind it."""
    held, outside = report["held_out_classes"], report["outside_esc50"]["all"]
    summary_split = {key: value for key, value in held.items() if key != "splits"}
    held_out_summary = summary_split and (
        f"telling fold-5 clips of 10 classes a 40-class model of this recipe never heard from the other 40 classes' "
        f"clips, AUROC {held['auroc_mean']:.3f}{_spread(held)} over {len(held['splits'])} of the {CLASS_SPLITS} "
        f"class splits ({held['unknown_rejected_mean']:.0%} of them rejected, {held['known_accepted_mean']:.0%} of "
        "known clips accepted); "
    )
    return {
        "summary": (
            f"Measured (`bench/UNKNOWN.md`): {held_out_summary or ''}against sounds outside ESC-50 made here (speech, "
            f"music, tones, silence, noise, clipped and low-bitrate audio), AUROC {outside['auroc']:.3f}, "
            f"{outside['unknown_rejected']:.0%} rejected."
            + ("" if summary_split else " The held-out-classes figure (40-class models of this recipe) is pending.")
        ),
        "held_out_classes": summary_split,
        "outside_esc50": outside,
    }


def _spread(held: dict[str, Any]) -> str:
    """` ± std` over the class splits, when there are several."""
    return f" ± {held['auroc_std']:.3f}" if len(held["splits"]) > 1 else ""


def earlier_report(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The report at `path` if it was made with the calibration `config` holds now (temperature, quantiles,
    threshold and what they were fitted on): its measurements then still read the same scores."""
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    same = (
        report.get("temperature") == config["calibration_temperature"]
        and report.get("threshold") == config["unknown_threshold"]
        and report.get("quantiles") == config.get("unknown_quantiles")
        and report.get("fitted_on") == config["calibration"]["fitted_on"]
    )
    return report if same else None


SCORE_NAMES = {
    "max_probability": "maximum probability",
    "energy": "energy",
    "atypicality": "atypicality alone",
    "unknown_score": "**the unknown score (shipped)**",
}


def render(report: dict[str, Any]) -> str:
    held, outside, selection = report["held_out_classes"], report["outside_esc50"], report["selection"]
    kinds = list(outside["kinds"])
    lines = [
        '# "None of these" (`bench/unknown.py`)',
        "",
        f"Generated by `python bench/unknown.py` on {report['date']} ({report['machine']}); every number comes from "
        "the runs. The unknown score (`prediction.unknown_score`) is the share of held-out known clips whose "
        "calibrated top score is at most the clip's, times the share at least as atypical (the network's batch-norm "
        f"statistics, bench/unknown_choice.md), that share divided by {report['atypicality_tail']:g} and capped at 1 "
        f"(the atypicality counts only among the {report['atypicality_tail']:.0%} most atypical known clips); "
        f"temperature {report['temperature']:.4f}, and a clip scoring below "
        f'**{report["threshold"]:.4f}** is "none of these". All were fitted on {report["fitted_on"]}, to accept '
        "95 % of those known clips; fold 5 was never fitted on.",
        "",
        "## The score, on the selection data (no fold 5)",
        "",
        f"The out-of-fold models ({', '.join(selection['runs'])}; measured {selection.get('date', report['date'])}) "
        "score their validation clips (known) against "
        "made-up sounds of seed 1 (unknown); the unknown score reads each model's clips against the other model's "
        "quantiles. AUROC, mean of the two models (the choice: bench/unknown_choice.md):",
        "",
        "| score | all | " + " | ".join(kinds) + " |",
        "| --- | --- | " + " | ".join("---" for _ in kinds) + " |",
    ]
    for name, row in selection["auroc"].items():
        cells = " | ".join(f"{row[kind]:.3f}" for kind in kinds)
        lines.append(f"| {SCORE_NAMES[name]} | {row['all']:.3f} | {cells} |")
    lines += ["", "## Held-out classes (fold 5)", ""]
    lines += (
        held_out_classes(held)
        if held["splits"]
        else [
            "Pending: the shipped recipe's 40-class models (`bench/own_classes.py pair`) are still training; this "
            "section is written when they exist (`--class-split-models`)."
        ]
    )
    lines += [
        "",
        f"## Sounds outside ESC-50 (made here, seed 0, {outside['per_kind']} clips of each kind, 5 s)",
        "",
        "Against the shipped model's 400 fold-5 clips (known). The kinds are the selection's generators with another "
        "seed: the figure says how the score does on these kinds of sound, not on every sound a user may record.",
        "",
        "| kind | AUROC | max probability AUROC | rejected at the threshold |",
        "| --- | --- | --- | --- |",
    ]
    for kind, row in outside["kinds"].items():
        lines.append(
            f"| {kind} | {row['auroc']:.3f} | {row['max_probability_auroc']:.3f} | {row['unknown_rejected']:.1%} |"
        )
    everything = outside["all"]
    lines += [
        f"| **all** | **{everything['auroc']:.3f}** | {everything['max_probability_auroc']:.3f} | "
        f"{everything['unknown_rejected']:.1%} |",
        "",
        f"Known fold-5 clips accepted at the threshold: **{everything['known_accepted']:.1%}**.",
        "",
        "## Aims",
        "",
        "- AUROC >= 0.85 on held-out classes: "
        + (
            f"{held['auroc_mean']:.3f}{_so_far(held)}, {'met' if held['auroc_mean'] >= 0.85 else 'missed'}."
            if held["splits"]
            else "pending."
        ),
        f"- AUROC >= 0.95 against sounds outside ESC-50: {everything['auroc']:.3f}, "
        f"{'met' if everything['auroc'] >= 0.95 else 'missed'}.",
        f"- >= 90 % of known fold-5 sounds accepted: {everything['known_accepted']:.1%}, "
        f"{'met' if everything['known_accepted'] >= 0.9 else 'missed'}.",
        "",
    ]
    return "\n".join(lines)


def held_out_classes(held: dict[str, Any]) -> list[str]:
    """The held-out-classes table: one row per class split and their mean."""
    networks = {row.get("num_networks", 1) for row in held["splits"]}
    stage = "pair" if networks == {2} else "base" if networks == {1} else "base/pair"
    lines = [
        f"{len(held['splits'])} 40-class model{'s' if len(held['splits']) > 1 else ''} of the shipped recipe (folds "
        f"1-4, `bench/own_classes.py {stage}`)"
        f"{_so_far(held)}; the known sounds are the fold-5 clips of their 40 classes (320), the unknown ones the "
        "fold-5 clips of the other 10 (80). The shipped model's temperature, quantiles and threshold, as they are "
        "(the same recipe).",
        "",
        "| split | unknown classes | AUROC | max probability AUROC | known accepted | unknown rejected | measured |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in held["splits"]:
        lines.append(
            f"| {row['split']} | {', '.join(row['unknown_classes'])} | {row['auroc']:.3f} | "
            f"{row['max_probability_auroc']:.3f} | {row['known_accepted']:.1%} | {row['unknown_rejected']:.1%} | "
            f"{row.get('date', '-')} |"
        )
    lines.append(
        f"| **mean** | | **{held['auroc_mean']:.3f}{_spread(held)}** | "
        f"{held['max_probability_auroc_mean']:.3f} | {held['known_accepted_mean']:.1%} | "
        f"{held['unknown_rejected_mean']:.1%} | |"
    )
    return lines


def _so_far(held: dict[str, Any]) -> str:
    """Says how many of the five class splits the figure covers while some are still training."""
    count = len(held["splits"])
    return (
        f" (so far {count} of the {CLASS_SPLITS} class splits; the others are not measured yet)"
        if count < CLASS_SPLITS
        else ""
    )


if __name__ == "__main__":
    raise SystemExit(main())
