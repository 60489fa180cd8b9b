"""Sound events in long recordings: one global score threshold against per-class thresholds, on soundscapes.

    python bench/events.py --model models/esc50-mel-cnn --held-out RUNS/oof-f4 --data-dir DIR

Soundscapes are built here, deterministically, from one fold's clips: 60 s of background (pink noise, or
ambience: that fold's clips of the background classes) with 3-6 events (clips of the other classes, trimmed to
where they sound) at known onsets, a third of the scenes with two events overlapping, each event at a given SNR
over the background (0, 10, 20 dB). Background classes are neither annotated nor scored.

The detector is `esc50-hf predict --events`: calibrated window scores every `HOP_SECONDS`, consecutive windows with
the same best label merged (`find_events`), windows below the label's threshold dropped. Thresholds are fitted
without fold 5, on fold-4 soundscapes scored by `--held-out` (a model of the recipe trained on folds 1-3):
the global one maximises event-based F1 over a grid; each per-class one maximises that class's F1, and stays at
the global value for a class with fewer than `MIN_EVENTS_PER_CLASS` events or no gain. Both are then applied to
the shipped model on fold-5 soundscapes: event-based F1 (1-s onset collar) and segment-based F1 (1-s segments),
per SNR and background. The per-class thresholds go into the model's config (`event_thresholds`: `--min-score
model`).

Writes `EVENTS.md`, `events.json` and `events.png` into `--output-dir`.
"""

import argparse
import datetime
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
from esc50_hf.paths import DEFAULT_MODEL_DIR  # noqa: E402

SCENE_SECONDS = 60.0
HOP_SECONDS = 1.0
SNRS = (0, 10, 20)
BACKGROUNDS = ("pink noise", "ambience")
BACKGROUND_CLASSES = ("rain", "sea_waves", "wind", "crickets", "insects", "crackling_fire", "thunderstorm")
SCENES_PER_CONDITION = 10
GRID = np.round(np.arange(0.0, 0.96, 0.05), 2)
MIN_EVENTS_PER_CLASS = 4
ONSET_COLLAR = 1.0
SEGMENT = 1.0


def active_span(wave: np.ndarray, rate: int, floor_db: float = -35.0) -> tuple[int, int]:
    """First and last sample of the 20-ms frames within `floor_db` of the clip's loudest frame."""
    frame = int(0.02 * rate)
    frames = len(wave) // frame
    energy = np.sqrt(np.mean(wave[: frames * frame].reshape(frames, frame) ** 2, axis=1)) + 1e-12
    loud = np.flatnonzero(20 * np.log10(energy / energy.max()) > floor_db)
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


def _rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(wave**2)) + 1e-12)


def build_scenes(dataset: Any, fold: int, rate: int, seed: int) -> list[dict[str, Any]]:
    """The fold's soundscapes: every background kind x SNR, `SCENES_PER_CONDITION` each, with their events."""
    from esc50_hf.data.esc50 import decoded_mono, split_folds

    clips = split_folds(dataset, fold)["validation"]
    names = clips.features["label"].names
    waves = [decoded_mono(row["audio"]) for row in clips]
    labels = [names[row["label"]] for row in clips]
    background_clips = [wave for wave, label in zip(waves, labels) if label in BACKGROUND_CLASSES]
    events = [(wave, label) for wave, label in zip(waves, labels) if label not in BACKGROUND_CLASSES]
    rng = np.random.default_rng(seed)
    samples = int(SCENE_SECONDS * rate)
    scenes = []
    for background in BACKGROUNDS:
        for snr in SNRS:
            for number in range(SCENES_PER_CONDITION):
                if background == "pink noise":
                    spectrum = np.fft.rfft(rng.standard_normal(samples))
                    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
                    bed = np.fft.irfft(spectrum, samples)
                else:
                    pieces = [background_clips[i] for i in rng.choice(len(background_clips), 13)]
                    bed = np.concatenate(pieces)[:samples]
                bed = (0.05 * bed / _rms(bed)).astype(np.float64)
                scene = bed.copy()
                reference = []
                count = int(rng.integers(3, 7))
                overlap = number % 3 == 0  # a third of the scenes: the second event starts inside the first
                slots = np.sort(rng.choice(np.arange(0, int(SCENE_SECONDS) - 6, 6), count, replace=False))
                for index, slot in enumerate(slots):
                    wave, label = events[int(rng.integers(len(events)))]
                    first, last = active_span(wave, rate)
                    piece = wave[first:last].astype(np.float64)
                    onset = float(slot + rng.uniform(0, 1.0))
                    if overlap and index == 1:
                        onset = reference[0][0] + rng.uniform(1.0, 2.0)
                    start = int(onset * rate)
                    piece = piece[: samples - start]
                    piece *= _rms(bed[start : start + len(piece)]) * 10 ** (snr / 20) / _rms(piece)
                    scene[start : start + len(piece)] += piece
                    reference.append((round(onset, 3), round(onset + len(piece) / rate, 3), label))
                peak = np.abs(scene).max()
                scene = scene / peak * 0.9 if peak > 0.9 else scene
                scenes.append(
                    {"background": background, "snr": snr, "wave": scene.astype(np.float32), "reference": reference}
                )
    return scenes


def window_timelines(model_dir: str | Path, scenes: list[dict[str, Any]]) -> list[Any]:
    """Each scene's calibrated timeline (a `Prediction`) from the model, a window every `HOP_SECONDS`."""
    from tqdm.auto import tqdm

    from esc50_hf.inference.classifier import SoundClassifier

    classifier = SoundClassifier(model_dir, hop_seconds=HOP_SECONDS)
    return [
        classifier.predict_waveform(scene["wave"]) for scene in tqdm(scenes, desc=f"Scenes ({Path(model_dir).name})")
    ]


def scores(scenes: list[dict[str, Any]], timelines: list[Any], thresholds: Any) -> dict[str, Any]:
    """Event- and segment-based counts over the scenes (background classes left out), with `thresholds`."""
    from esc50_hf.evaluation.sound_events import Counts, event_counts, segment_counts

    events, segments, per_class = Counts(), Counts(), {}
    for scene, timeline in zip(scenes, timelines):
        reference = [event for event in scene["reference"] if event[2] not in BACKGROUND_CLASSES]
        found = [
            (event.start_s, event.end_s, event.label)
            for event in timeline.with_events(thresholds).events
            if event.label not in BACKGROUND_CLASSES
        ]
        events += event_counts(reference, found, ONSET_COLLAR)
        segments += segment_counts(reference, found, SCENE_SECONDS, SEGMENT)
        for label in {event[2] for event in reference} | {event[2] for event in found}:
            own = event_counts(
                [e for e in reference if e[2] == label], [e for e in found if e[2] == label], ONSET_COLLAR
            )
            per_class[label] = per_class.get(label, Counts()) + own
    return {"event": events, "segment": segments, "per_class": per_class}


def fit_thresholds(scenes: list[dict[str, Any]], timelines: list[Any], labels: tuple[str, ...]) -> dict[str, Any]:
    """The global threshold (best event F1 over `GRID`) and the per-class ones (see the module docstring)."""
    by_global = {float(value): scores(scenes, timelines, float(value))["event"].f1 for value in GRID}
    best = max(by_global, key=lambda value: (by_global[value], -value))
    per_threshold = {float(value): scores(scenes, timelines, float(value))["per_class"] for value in GRID}
    per_class = {}
    for label in labels:
        if label in BACKGROUND_CLASSES:
            continue
        counts = {value: table.get(label) for value, table in per_threshold.items()}
        base = counts[best]
        events = (base.hits + base.misses) if base else 0
        chosen = best
        if events >= MIN_EVENTS_PER_CLASS:
            chosen = max(counts, key=lambda value: ((counts[value].f1 if counts[value] else 0.0), value == best))
            if (counts[chosen].f1 if counts[chosen] else 0.0) <= base.f1:
                chosen = best
        per_class[label] = chosen
    return {"global": best, "global_curve": by_global, "per_class": per_class}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--held-out", required=True, metavar="RUN", help="a model of the recipe trained on folds 1-3")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--output-dir", default=str(ROOT / "bench"))
    args = parser.parse_args(argv)

    from esc50_hf.data.esc50 import TEST_FOLD, load_esc50
    from esc50_hf.model.configuration_esc50_cnn import Esc50CnnConfig
    from esc50_hf.model.labels import SAMPLING_RATE, model_labels

    fit_fold = int(json.loads((Path(args.held_out) / "training_config.json").read_text())["validation_fold"])
    assert fit_fold != TEST_FOLD
    dataset = load_esc50(args.data_dir, SAMPLING_RATE)
    fit_scenes = build_scenes(dataset, fit_fold, SAMPLING_RATE, seed=fit_fold)
    fitted = fit_thresholds(
        fit_scenes,
        window_timelines(args.held_out, fit_scenes),
        model_labels(Esc50CnnConfig.from_pretrained(args.model)),
    )
    test_scenes = build_scenes(dataset, TEST_FOLD, SAMPLING_RATE, seed=TEST_FOLD)
    test_timelines = window_timelines(args.model, test_scenes)
    results: dict[str, Any] = {"conditions": []}
    for kind, thresholds in (("global", fitted["global"]), ("per-class", fitted["per_class"])):
        overall = scores(test_scenes, test_timelines, thresholds)
        results[kind] = {"event": overall["event"].to_dict(), "segment": overall["segment"].to_dict()}
    for background in BACKGROUNDS:
        for snr in SNRS:
            chosen = [
                i for i, scene in enumerate(test_scenes) if scene["background"] == background and scene["snr"] == snr
            ]
            row: dict[str, Any] = {"background": background, "snr": snr}
            for kind, thresholds in (("global", fitted["global"]), ("per-class", fitted["per_class"])):
                counts = scores([test_scenes[i] for i in chosen], [test_timelines[i] for i in chosen], thresholds)
                row[kind] = {"event_f1": counts["event"].f1, "segment_f1": counts["segment"].f1}
            results["conditions"].append(row)

    config = Esc50CnnConfig.from_pretrained(args.model)
    config.event_thresholds = fitted["per_class"]
    config.save_pretrained(args.model)
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "fitted_on": f"fold-{fit_fold} soundscapes, scored by {Path(args.held_out).name}",
        "scenes": {"fit": len(fit_scenes), "test": len(test_scenes), "seconds": SCENE_SECONDS},
        "hop_seconds": HOP_SECONDS,
        "onset_collar": ONSET_COLLAR,
        "segment": SEGMENT,
        "background_classes": list(BACKGROUND_CLASSES),
        "thresholds": {"global": fitted["global"], "per_class": fitted["per_class"]},
        "global_curve_fold_fit": fitted["global_curve"],
        **results,
    }
    output = Path(args.output_dir)
    (output / "events.json").write_text(json.dumps(report, indent=2))
    plot(report, output / "events.png")
    (output / "EVENTS.md").write_text(render(report))
    print((output / "EVENTS.md").read_text())
    return 0


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from esc50_hf.training.reports import save_compact_png

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for axis, measure in zip(axes, ("event_f1", "segment_f1")):
        for background, style in zip(BACKGROUNDS, ("-", "--")):
            rows = [row for row in report["conditions"] if row["background"] == background]
            for kind, colour in (("global", "tab:blue"), ("per-class", "tab:orange")):
                axis.plot(
                    [row["snr"] for row in rows],
                    [row[kind][measure] for row in rows],
                    style,
                    color=colour,
                    marker="o",
                    label=f"{kind}, {background}",
                )
        axis.set_xlabel("SNR of the events over the background (dB)")
        axis.set_title(measure.replace("_", " ").replace("f1", "F1"), fontsize=9)
        axis.set_ylim(0, 1)
    axes[0].set_ylabel("F1 on fold-5 soundscapes")
    axes[1].legend(fontsize=7)
    save_compact_png(figure, path)


def render(report: dict[str, Any]) -> str:
    per_class = report["thresholds"]["per_class"]
    moved = {label: value for label, value in per_class.items() if value != report["thresholds"]["global"]}
    lines = [
        "# Sound events in long recordings (`bench/events.py`)",
        "",
        f"Generated by `python bench/events.py` on {report['date']} ({report['machine']}); every number comes from "
        "the runs.",
        "",
        f"Soundscapes of {report['scenes']['seconds']:.0f} s built from one fold's clips (3-6 events each, a third "
        "with two overlapping), over pink noise or ambience (that fold's clips of "
        f"{', '.join(report['background_classes'])}: not annotated, not scored) at SNR {', '.join(map(str, SNRS))} dB. "
        f"Detector: `esc50-hf predict --events` with a window every {report['hop_seconds']:g} s. Event-based F1 with "
        f"a {report['onset_collar']:g}-s onset collar, segment-based F1 over {report['segment']:g}-s segments, "
        "micro-averaged.",
        "",
        f"Thresholds fitted on {report['fitted_on']} ({report['scenes']['fit']} scenes), never fold 5: global "
        f"**{report['thresholds']['global']:.2f}**; per class, {len(moved)} of {len(per_class)} classes moved from it "
        f"({', '.join(f'{k} {v:.2f}' for k, v in sorted(moved.items())) or 'none'}).",
        "",
        f"## Fold 5 ({report['scenes']['test']} scenes, the shipped model)",
        "",
        "| thresholds | event F1 | precision | recall | segment F1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind in ("global", "per-class"):
        event, segment = report[kind]["event"], report[kind]["segment"]
        lines.append(
            f"| {kind} | **{event['f1']:.3f}** | {event['precision']:.3f} | {event['recall']:.3f} | "
            f"{segment['f1']:.3f} |"
        )
    lines += [
        "",
        "By background and SNR (event F1 / segment F1):",
        "",
        "| background | SNR dB | global | per-class |",
        "| --- | --- | --- | --- |",
    ]
    for row in report["conditions"]:
        lines.append(
            f"| {row['background']} | {row['snr']} | {row['global']['event_f1']:.3f} / "
            f"{row['global']['segment_f1']:.3f} | {row['per-class']['event_f1']:.3f} / "
            f"{row['per-class']['segment_f1']:.3f} |"
        )
    better = report["per-class"]["event"]["f1"] >= report["global"]["event"]["f1"]
    lines += [
        "",
        f"Per-class thresholds no worse overall than the global one (event F1): {'yes' if better else 'no'}.",
        "",
        "![F1 by SNR](events.png)",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
