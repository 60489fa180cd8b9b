"""How the model holds up on real recordings: one fold of ESC-50 under corruptions at three severities.

    python bench/robustness.py --model "shipped=models/esc50-mel-cnn" --data-dir /tmp/esc50/ESC-50 --fold 5

Like ImageNet-C for images: every clip of `--fold` under each corruption below, generated deterministically
(seeded per corruption, severity and clip) by `esc50_hf.data.degradations`, the code the training transforms use.
Backgrounds and ambience are clips of the ambient classes of the same fold (never the clip itself), so a fold-5
benchmark uses no training audio. Each model answers through `SoundClassifier`, the path of `esc50-hf predict`
(a 20-s placement input is classified in windows, as any long file is). Accuracy per corruption and severity,
the mean over all of them (mean corrupted accuracy) and its drop from clean.

`--model NAME=PATH[,PATH...]` may repeat; several paths (trainings of one recipe) are reported as mean ± std. A path
`A+B` is two networks answering together: each window's probabilities are the mean of A's and B's as trained
(temperature 1; bench/robust_recipe_choice.md, round 5); everything else is A's `SoundClassifier`.
Results merge into `--output-dir`'s robustness.json by model name (same fold only), so "before" and "after"
stay side by side; ROBUSTNESS.md and robustness.png are rendered from the whole file. `--merge-from JSON` takes the
models of another report too; `--add-trainings` adds the given paths' scores to a same-named model instead of
replacing it (trainings of one recipe scored in separate sessions, their models gone since).
"""

import argparse
import datetime
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
from esc50_hf.data import degradations as deg  # noqa: E402

PLACEMENT_SECONDS = 20.0
SEED = 2027


@dataclass(frozen=True)
class Corruption:
    """One corruption: its name, its severities, and `make(clip, severity, rng, background)` (`background`: another
    clip of the fold's ambient classes, for the corruptions that mix one in)."""

    name: str
    family: str
    severities: tuple[Any, Any, Any]
    unit: str
    make: Callable[[np.ndarray, Any, np.random.Generator, np.ndarray], np.ndarray]


class Ambient:
    """The fold's clips of the ambient classes, to draw a background from (never the clip being corrupted)."""

    def __init__(self, clips: list[np.ndarray], indices: list[int]) -> None:
        self.clips, self.indices = clips, indices

    def other_than(self, clip_index: int, rng: np.random.Generator) -> np.ndarray:
        choices = [i for i, index in enumerate(self.indices) if index != clip_index]
        return self.clips[choices[rng.integers(len(choices))]]


def _telephone(clip: np.ndarray, severity: str, rng: np.random.Generator, rate: int) -> np.ndarray:
    if severity in ("band", "band + GSM"):
        clip = deg.telephone_band(clip, rate)
    if severity in ("GSM", "band + GSM"):
        clip = deg.codec_round_trip(clip, rate, "gsm", 13000)
    return clip


def _placed(clip: np.ndarray, snr: float, rng: np.random.Generator, background: np.ndarray, rate: int) -> np.ndarray:
    total = int(PLACEMENT_SECONDS * rate)
    offset = int(rng.integers(0, total - clip.size + 1))
    return deg.place_in_ambience(clip, background, total, offset, snr)


def corruptions(rate: int) -> list[Corruption]:
    """The benchmark's corruptions, mildest severity first."""
    return [
        Corruption("white noise", "noise", (20, 10, 0), "dB SNR",
                   lambda x, s, rng, bg: deg.mix_at_snr(x, deg.coloured_noise(x.size, 0.0, rng), s)),
        Corruption("pink noise", "noise", (20, 10, 0), "dB SNR",
                   lambda x, s, rng, bg: deg.mix_at_snr(x, deg.coloured_noise(x.size, 1.0, rng), s)),
        Corruption("background", "noise", (20, 10, 0), "dB SNR",
                   lambda x, s, rng, bg: deg.mix_at_snr(x, np.roll(bg, rng.integers(bg.size)), s)),
        Corruption("reverberation", "room", (0.3, 0.8, 1.5), "s RT60",
                   lambda x, s, rng, bg: deg.reverberate(x, deg.room_impulse_response(s, rate, rng))),
        Corruption("MP3", "codec", (64, 48, 32), "kbit/s",
                   lambda x, s, rng, bg: deg.codec_round_trip(x, rate, "mp3", s * 1000)),
        Corruption("AAC", "codec", (64, 48, 32), "kbit/s",
                   lambda x, s, rng, bg: deg.codec_round_trip(x, rate, "aac", s * 1000)),
        Corruption("Opus", "codec", (16, 14, 12), "kbit/s",
                   lambda x, s, rng, bg: deg.codec_round_trip(x, rate, "opus", s * 1000)),
        Corruption("telephone", "codec", ("band", "GSM", "band + GSM"), "(300-3400 Hz band, GSM 13 kbit/s)",
                   lambda x, s, rng, bg: _telephone(x, s, rng, rate)),
        Corruption("quiet", "level", (-10, -20, -30), "dB",
                   lambda x, s, rng, bg: deg.change_level(x, s)),
        Corruption("loud, clipped", "level", (6, 12, 20), "dB",
                   lambda x, s, rng, bg: deg.change_level(x, s)),
        Corruption("placement", "placement", (30, 20, 10), f"dB SNR of {PLACEMENT_SECONDS:.0f} s of ambience",
                   lambda x, s, rng, bg: _placed(x, s, rng, bg, rate)),
    ]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH[,PATH...]",
                        help="a model (or several trainings of one recipe) to score; repeat for more")  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="ESC-50 folder in the official layout (default: download)")
    parser.add_argument("--fold", type=int, default=5, help="the fold whose clips are corrupted")
    parser.add_argument("--cache-dir", default=None, help="keep the corrupted clips here (float16) for later models")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the models")
    parser.add_argument("--output-dir", default=str(ROOT / "bench"))
    parser.add_argument("--add-trainings", action="store_true",
                        help="add these paths' scores to the same-named model already in the report (trainings of "
                             "one recipe scored in separate sessions) instead of replacing it")  # fmt: skip
    parser.add_argument(
        "--merge-from",
        action="append",
        default=[],
        metavar="JSON",
        help="also take the models of this robustness.json (same fold and corruptions); repeatable",
    )
    return parser.parse_args(argv)


def load_fold(data_dir: str | None, fold: int, rate: int) -> tuple[list[np.ndarray], list[str], Ambient]:
    from esc50_hf.data.esc50 import decoded_mono, load_esc50, split_folds

    clips = split_folds(load_esc50(data_dir, rate), fold)["validation"]
    names = clips.features["label"].names
    labels = [names[label] for label in clips["label"]]
    waveforms = [decoded_mono(audio) for audio in tqdm(clips["audio"], desc=f"Decoding fold {fold}")]
    ambient = [i for i, label in enumerate(labels) if label in deg.AMBIENT_CLASSES]
    return waveforms, labels, Ambient([waveforms[i] for i in ambient], ambient)


def corrupted_set(
    corruption: Corruption, severity_index: int, waveforms: list[np.ndarray], ambient: Ambient, number: int,
    cache: Path | None,
) -> list[np.ndarray]:  # fmt: skip
    """Every clip under one corruption at one severity (read from `cache` when there)."""
    severity = corruption.severities[severity_index]
    path = (
        None if cache is None else cache / f"{corruption.name.replace(' ', '_').replace(',', '')}-{severity_index}.npy"
    )
    if path is not None and path.is_file():
        return list(np.load(path).astype(np.float32))
    out = []
    for index, clip in enumerate(tqdm(waveforms, desc=f"{corruption.name} {severity} {corruption.unit}", leave=False)):
        rng = np.random.default_rng([SEED, number, severity_index, index])
        background = ambient.other_than(index, rng)
        out.append(corruption.make(clip, severity, rng, background).astype(np.float32))
    if path is not None and corruption.family != "placement":  # 20-s inputs are quick to rebuild and 4x the size
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.stack(out).astype(np.float16))
    return out


def accuracy(classifier: Any, waveforms: list[np.ndarray], labels: list[str]) -> float:
    rate = classifier.sampling_rate
    answers = [p.label for p in classifier.predict_many([(rate, w) for w in waveforms], top_k=1)]
    return float(np.mean([answer == label for answer, label in zip(answers, labels)]))


class AveragedBackend:
    """Several saved models behind one `LogitsBackend`: the log of their mean probabilities as trained (so that a
    softmax of it is that mean), and the mean of their atypicalities. Temperature 1: a model trained on folds 1-4
    has its temperature fitted on fold 5 by training, which must not enter a fold-5 answer."""

    def __init__(self, paths: list[str]) -> None:
        from esc50_hf.inference.backends import TorchBackend

        self.members = [TorchBackend(path) for path in paths]
        for member in self.members:
            member.model.config.calibration_temperature = 1.0

    def with_atypicality(self, input_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        outputs = [member.with_atypicality(input_values) for member in self.members]
        probabilities = torch.stack([torch.softmax(torch.as_tensor(logits), dim=-1) for logits, _ in outputs])
        logits = torch.log(probabilities.mean(dim=0)).numpy()
        return logits, np.mean([atypicality for _, atypicality in outputs], axis=0)

    def __call__(self, input_values: np.ndarray) -> np.ndarray:
        return self.with_atypicality(input_values)[0]


def classifier_for(path: str, limits: Any) -> Any:
    """`SoundClassifier` of `path`, or of the networks of `A+B` answering together (`AveragedBackend`)."""
    from esc50_hf.inference import SoundClassifier

    members = path.split("+")
    classifier = SoundClassifier(members[0], batch_size=32, limits=limits)
    if len(members) > 1:
        classifier.backend = AveragedBackend(members)
    return classifier


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from esc50_hf.inference import SoundClassifier
    from esc50_hf.model.audio_io import AudioLimits

    # The mixtures are at the SNR the corruption says, not brought back to full scale: a background with a high crest
    # factor mixed at 0 dB can peak far above 1.0, which the input check takes for integer PCM stored as floats.
    limits = AudioLimits(max_float_peak=float("inf"))
    torch.set_num_threads(args.threads)
    classifiers: dict[str, list[SoundClassifier]] = {}
    models: dict[str, dict[str, Any]] = {}
    for spec in args.model:
        name, _, paths = spec.partition("=")
        if not paths:
            raise SystemExit(f"--model {spec!r}: write NAME=PATH[,PATH...]")
        classifiers[name] = [classifier_for(path, limits) for path in paths.split(",")]
        models[name] = {"paths": [_shown_path(path) for path in paths.split(",")], "clean": [], "results": {}}
    rate = next(iter(classifiers.values()))[0].sampling_rate
    waveforms, labels, ambient = load_fold(args.data_dir, args.fold, rate)
    cache = Path(args.cache_dir) / f"fold{args.fold}" if args.cache_dir else None
    for name, result in models.items():
        result["clean"] = [accuracy(c, waveforms, labels) for c in classifiers[name]]
        print(f"{name}: clean {result['clean']}", flush=True)
    table = corruptions(rate)
    for number, corruption in enumerate(table):
        for severity_index, severity in enumerate(corruption.severities):
            started = time.perf_counter()
            corrupted = corrupted_set(corruption, severity_index, waveforms, ambient, number, cache)
            for name, result in models.items():
                scores = [accuracy(c, corrupted, labels) for c in classifiers[name]]
                result["results"].setdefault(corruption.name, {})[str(severity)] = scores
            shown = {
                name: round(float(np.mean(r["results"][corruption.name][str(severity)])), 4)
                for name, r in models.items()
            }
            print(f"{corruption.name} {severity}: {shown} ({time.perf_counter() - started:.0f} s)", flush=True)
    return {
        "fold": args.fold,
        "clips": len(labels),
        "seed": SEED,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}, {args.threads} torch thread(s)",
        "corruptions": [
            {"name": c.name, "family": c.family, "severities": [str(s) for s in c.severities], "unit": c.unit}
            for c in table
        ],
        "models": models,
    }


def _shown_path(model: str) -> str:
    if "+" in model:
        return "+".join(_shown_path(member) for member in model.split("+"))
    path = Path(model).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else model


def merged(report: dict[str, Any], earlier_files: list[Path], add_trainings: bool = False) -> dict[str, Any]:
    """`report` with the models of earlier reports of the same fold and corruptions (a later file wins a name) that it
    does not re-score; with `add_trainings`, a re-scored name keeps its earlier trainings and gains the new ones."""
    models: dict[str, dict[str, Any]] = {}
    for path in earlier_files:
        if not path.is_file():
            continue
        earlier = json.loads(path.read_text())
        if earlier.get("fold") == report["fold"] and earlier.get("corruptions") == report["corruptions"]:
            models.update({name: m | {"date": m.get("date", earlier["date"])} for name, m in earlier["models"].items()})
    for name, model in report["models"].items():
        model = model | {"date": report["date"]}
        if add_trainings and name in models:
            model = _with_trainings(models[name], model, name)
        models[name] = model
    return report | {"models": models}


def _with_trainings(earlier: dict[str, Any], new: dict[str, Any], name: str) -> dict[str, Any]:
    """The model `earlier` with the trainings of `new` added (paths, clean and every corrupted score)."""
    again = sorted(set(earlier["paths"]) & set(new["paths"]))
    if again:
        raise SystemExit(f"--add-trainings: {name!r} already holds {', '.join(again)}")
    results = {
        corruption: {severity: earlier["results"][corruption][severity] + scores for severity, scores in by.items()}
        for corruption, by in new["results"].items()
    }
    dates = sorted({*earlier.get("date", "").split(" and "), new["date"]} - {""})
    return {"paths": earlier["paths"] + new["paths"], "clean": earlier["clean"] + new["clean"], "results": results,
            "date": " and ".join(dates)}  # fmt: skip


def summary(model: dict[str, Any]) -> dict[str, Any]:
    """Clean, mean corrupted accuracy and the drop, each as (mean, std) over the model's trainings."""
    clean = np.asarray(model["clean"])
    per_run = np.mean([[scores[i] for family in model["results"].values() for scores in family.values()]
                       for i in range(len(clean))], axis=1)  # fmt: skip
    return {"clean": clean, "mean corrupted": per_run, "drop": clean - per_run}


def _shown(values: Any) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f}" if values.size == 1 else f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def render_markdown(report: dict[str, Any]) -> str:
    names = list(report["models"])
    lines = [
        f"# Robustness: fold {report['fold']} of ESC-50 under real-recording corruptions",
        "",
        f"Generated by `python bench/robustness.py` ({report['machine']}); {report['clips']} clips of fold "
        f"{report['fold']}, each under {len(report['corruptions'])} corruptions at 3 severities, made by "
        f"`esc50_hf/data/degradations.py` with seed {report['seed']} (per corruption, severity and clip). Backgrounds "
        f"and ambience are other clips of fold {report['fold']}'s ambient classes ({', '.join(deg.AMBIENT_CLASSES)}). "
        "Models answer through `SoundClassifier` (the `esc50-hf predict` path; the 20-s placement files in windows). "
        "Several trainings of one recipe: mean ± std.",
        "",
        "| model | scored | clean | mean corrupted | drop |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in names:
        model = report["models"][name]
        s = summary(model)
        runs = f"{len(model['clean'])} training(s), {model.get('date', report['date'])}"
        lines.append(
            f"| {name} | {runs} | {_shown(s['clean'])} | {_shown(s['mean corrupted'])} | {_shown(s['drop'])} |"
        )
    lines += ["", "| corruption | severity | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for corruption in report["corruptions"]:
        for severity in corruption["severities"]:
            cells = [_shown(report["models"][n]["results"][corruption["name"]][severity]) for n in names]
            lines.append(f"| {corruption['name']} | {severity} {corruption['unit']} | " + " | ".join(cells) + " |")
    lines += ["", "![accuracy per corruption](robustness.png)", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["models"])
    groups = [c["name"] for c in report["corruptions"]]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    width = 0.8 / len(names)
    for severity_index, axis in enumerate(axes):
        for k, name in enumerate(names):
            model = report["models"][name]
            means = [
                np.mean(model["results"][c["name"]][c["severities"][severity_index]]) for c in report["corruptions"]
            ]
            axis.bar(np.arange(len(groups)) + k * width, means, width, label=name)
            axis.axhline(np.mean(model["clean"]), color=f"C{k}", linestyle="--", linewidth=0.8)
        axis.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, groups, rotation=60, ha="right")
        axis.set_title(["mild", "medium", "severe"][severity_index] + " (dashed: clean)")
        axis.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"fold-{report['fold']} accuracy")
    rows = -(-len(names) // 4)  # the legend below the panels, four models a row: it covers no bar
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=min(4, len(names)), fontsize=8)
    figure.tight_layout(rect=(0, 0.04 * rows, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    earlier = [output / "robustness.json"] + [Path(path) for path in args.merge_from]
    report = merged(run(args), earlier, args.add_trainings)
    (output / "robustness.json").write_text(json.dumps(report, indent=2))
    (output / "ROBUSTNESS.md").write_text(render_markdown(report))
    plot(report, output / "robustness.png")
    print(f"wrote {output / 'ROBUSTNESS.md'}")


if __name__ == "__main__":
    main()
