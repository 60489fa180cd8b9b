"""Compare training recipes from their run folders: the selection table (fold 5 unseen) and the chosen recipe's scores.

    python bench/recipes.py RUN_FOLDER [RUN_FOLDER ...] [--cv CV_FOLDER] [--page docs/results.md]
    python bench/recipes.py --from-json bench/recipes.json [--page docs/results.md] [--print-readme-lines]

Each RUN_FOLDER is a model folder written by `train.py` or `esc50-hf merge` (`metrics.json`,
`training_config.json`, `config.json`). Runs are grouped into candidates by folder name, a trailing `-s<seed>`
removed (`stem-s0`, `stem-s1` -> `stem`), and by their split; runs grouped together must be the same recipe but for
the seed (and a second stage's starting model), or the script stops. A merged model's seed is its networks' ("0+3").
Per candidate: the network's cost (parameters, GFLOPs per 5-s clip from torch's flop counter), seconds per epoch,
training time (a second stage's first stage included), and accuracy / macro-F1 as mean ± population std over its
seeds, for the saved model (the weight average when the recipe has one) and for the last weights. Candidates
validated on fold 5 or trained on it are listed apart: they are the chosen recipe's test runs, never the basis of a
choice.

Writes `RECIPES.md` and `recipes.json` into `--output-dir` (default `bench/`); with `--page`,
replaces the block between `<!-- recipes:start -->` and `<!-- recipes:end -->` of that page (another
block with `--page-block NAME`: `<!-- NAME:start -->`) by the summary, so the results page
(docs/results.md) gets its numbers from the runs. The run folders are not committed: `--from-json`
refreshes the page from a `recipes.json` written earlier instead (nothing else is rewritten).

`--print-readme-lines` prints the README's three results lines (the shipped recipe on fold 5, its
cross-validation, its cost), computed by `readme_lines` from the same `recipes.json`;
tests/test_readme.py checks that README.md carries them as computed from bench/recipes.json.
"""

import argparse
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from esc50_hf.data.esc50 import TEST_FOLD

ROOT = Path(__file__).resolve().parent.parent
SPLIT_KEYS = ("train_folds", "validation_fold")  # a candidate's recipe on another split is still its recipe
INNER_PLOT = "inner_folds.png"  # beside RECIPES.md, when candidates were validated on several inner folds
SPLIT_PLOT = "selection.png"  # beside RECIPES.md, when several candidates share one selection split
PAGE_BLOCK = "recipes"  # the page's block is the text between <!-- recipes:start --> and <!-- recipes:end -->
RESULTS_LINK = "docs/results.md"  # the results page, relative to README.md: each README line links to it


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help="model folders written by train.py (none with --from-json)")
    parser.add_argument(
        "--from-json",
        default=None,
        metavar="RECIPES_JSON",
        help="a recipes.json written earlier by this script: the page block and the README lines come from it, "
        "without the run folders (it links the plot found beside it)",
    )
    parser.add_argument("--cv", default=None, help="a `train.py --cv` output folder (its cv_results.json and folds)")
    parser.add_argument("--page", default=None, help="a Markdown page with a block to refresh, e.g. docs/results.md")
    parser.add_argument(
        "--previous",
        default=None,
        help="a reference model folder's reports, e.g. the model the candidates would replace (metrics.json, "
        "repeated_runs.json, cv_results.json, configs)",
    )
    parser.add_argument("--choice", default=None, help="how the recipe was chosen (the rule, set before the results)")
    parser.add_argument(
        "--page-block", default=PAGE_BLOCK, help="the name of the page's block to refresh (<!-- NAME:start -->)"
    )
    parser.add_argument(
        "--page-brief", action="store_true", help="the page's block gets the means over inner folds, not every split"
    )
    parser.add_argument(
        "--print-readme-lines",
        action="store_true",
        help="print the README's three results lines (shipped recipe on fold 5, its cross-validation, its cost)",
    )
    parser.add_argument("--title", default="Training recipes compared", help="the report's heading")
    parser.add_argument("--output-dir", default=str(ROOT / "bench"))
    args = parser.parse_args(argv)
    if bool(args.runs) == bool(args.from_json):
        parser.error("give either run folders or --from-json RECIPES_JSON")
    if args.from_json and (args.cv or args.previous or args.choice):
        parser.error("--cv, --previous and --choice are read from the run folders; --from-json has them already")
    return args


def read_run(folder: Path) -> dict[str, Any]:
    from esc50_hf.data.esc50 import training_folds
    from esc50_hf.training.model_folder import (
        CONFIG_FILE,
        FIRST_STAGE_SECONDS,
        METRICS_FILE,
        RECIPE_FILE,
        ModelFolderError,
        first_stage_seconds,
        model_form,
        read_model_folder,
        run_seed,
        training_seconds,
    )

    try:
        run = read_model_folder(folder, require=(METRICS_FILE, RECIPE_FILE, CONFIG_FILE))
        recipe, metrics = run.recipe, run.metrics
    except ModelFolderError as error:
        raise SystemExit(str(error)) from None
    if "merged_from" in metrics and FIRST_STAGE_SECONDS not in metrics and recipe.get("model_name_or_path"):
        raise SystemExit(f"{folder} was merged before merges recorded their first stages' time: merge it again")
    validation_fold = int(recipe["validation_fold"])
    train_folds = training_folds(validation_fold, recipe.get("train_folds"))
    return {
        "folder": str(folder),
        "candidate": re.sub(r"-s\d+$", "", folder.name),
        "recipe": recipe,
        "seed": run_seed(recipe, metrics),
        "form": model_form(metrics),
        "train_seconds": training_seconds(metrics) + (first_stage_seconds(recipe, metrics) or 0),
        "validation_fold": validation_fold,
        "train_folds": train_folds,
        "metrics": metrics,
        "device": device(metrics.get("hardware")),
        **network_cost(folder),
    }


def device(hardware: str | None) -> str:
    """ "CPU" or the GPU's name, from metrics.json's hardware ("<processor>, <n> cores[, <GPU>]")."""
    last = (hardware or "").rsplit(", ", 1)[-1]
    return "CPU" if not hardware or last.endswith(" cores") else last.removeprefix("NVIDIA ")


def network_cost(folder: Path) -> dict[str, float]:
    """Parameters and forward GFLOPs of the folder's network on one 5-s clip (weights not needed)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from esc50_hf.model.configuration_esc50_cnn import Esc50CnnConfig
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor
    from esc50_hf.model.modeling_esc50_cnn import Esc50CnnForAudioClassification

    config = Esc50CnnConfig.from_pretrained(folder)
    frames = Esc50FeatureExtractor.from_pretrained(folder).num_frames
    model = Esc50CnnForAudioClassification(config).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, config.num_mel_bins, frames))
    return {"parameters": sum(p.numel() for p in model.parameters()), "gflops": counter.get_total_flops() / 1e9}


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:

    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(_group_key(run), []).append(run)
    rows = []
    for (candidate, validation_fold, train_folds, run_device), members in groups.items():
        first = members[0]
        seeds = [run["seed"] for run in members]
        if len(set(seeds)) != len(seeds):  # the same seed on another device is another group
            raise SystemExit(f"{candidate!r} has two runs with the same seed: {[run['folder'] for run in members]}")
        row = {
            "candidate": candidate,
            "validation_fold": validation_fold,
            "train_folds": list(train_folds),
            "sees_test_fold": TEST_FOLD in (validation_fold, *train_folds),
            "device": run_device,
            "seeds": seeds,
            "runs": [run["folder"] for run in members],
            "parameters": first["parameters"],
            "gflops": round(first["gflops"], 3),
            "ema_decay": first["recipe"].get("ema_decay", 0.0),
            "seconds_per_epoch": _mean([run["metrics"].get("seconds_per_epoch") for run in members]),
            "train_minutes": _mean([run["train_seconds"] / 60 for run in members]),
            "threads": sorted({run["metrics"].get("torch_threads_per_process") for run in members}),
            "hardware": first["metrics"].get("hardware"),
            "epochs": first["recipe"].get("num_train_epochs"),
            "teachers": first["recipe"].get("teacher_models") or [],  # their own trainings are not in the times
            "per_seed": [
                {
                    "seed": run["seed"],
                    "accuracy": run["metrics"]["accuracy"],
                    "f1": run["metrics"]["f1"],
                    "last_weights": run["metrics"].get("last_weights"),
                }
                for run in members
            ],
        }
        for key in ("accuracy", "f1"):
            row[key] = _spread([run["metrics"][key] for run in members])
            last = [run["metrics"].get("last_weights", {}).get(key) for run in members]
            row[f"last_weights_{key}"] = _spread(last) if None not in last else None
        rows.append(row)
    rows = sorted(rows, key=lambda row: (row["sees_test_fold"], row["gflops"], row["candidate"]))
    _check_one_recipe_per_name(groups)
    _check_the_test_runs(rows, groups)
    return rows


def _check_one_recipe_per_name(groups: dict[tuple, list[dict[str, Any]]]) -> None:
    """A candidate's runs on different splits or devices are one recipe (but for the split and seed)."""
    first: dict[str, dict[str, Any]] = {}
    for (candidate, *_), members in groups.items():
        for other in members:
            run = first.setdefault(candidate, other)
            differences = _run_differences(run, other)
            if differences:
                raise SystemExit(
                    f"{other['folder']} and {run['folder']} are both named {candidate!r} but differ in "
                    f"{', '.join(differences)}: give different recipes different names"
                )


def _check_the_test_runs(rows: list[dict[str, Any]], groups: dict[tuple, list[dict[str, Any]]]) -> None:
    """At most one recipe meets the test fold, and it is one of the candidates compared without it."""
    tested = {row["candidate"] for row in rows if row["sees_test_fold"]}
    if len(tested) > 1:
        raise SystemExit(f"runs of several recipes touch fold {TEST_FOLD} ({sorted(tested)}): only the chosen one may")
    for row in rows:
        if not row["sees_test_fold"]:
            continue
        tested_run = groups[_group_key(row)][0]
        row["chosen_from"] = sorted(
            {
                other["candidate"]
                for other in rows
                if not other["sees_test_fold"] and not _run_differences(tested_run, groups[_group_key(other)][0])
            }
        )


def _run_differences(run: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """What makes two runs (`read_run`) trainings of different recipes, their splits aside: the recipe's options
    beyond those repetitions may differ in, and the form of the model (`model_form`)."""
    from esc50_hf.training.recipe import repetition_differences

    differences = repetition_differences(run["recipe"], other["recipe"], ignore=SPLIT_KEYS)
    return differences + ([f"form ({run['form']} vs {other['form']})"] if run["form"] != other["form"] else [])


def _group_key(item: dict[str, Any]) -> tuple:
    """Runs (and the rows summarising them) of one candidate on one split and one kind of device share this key."""
    return item["candidate"], item["validation_fold"], tuple(item["train_folds"]), item["device"]


def inner_fold_means(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per candidate and device validated on several folds (fold 5 unseen): the mean over those folds of each fold's
    mean over seeds, and the std of those fold means (how much the fold moves the score)."""
    merged: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if not row["sees_test_fold"]:
            merged.setdefault((row["candidate"], row["device"]), []).append(row)
    means = []
    for (candidate, run_device), members in merged.items():
        if len({row["validation_fold"] for row in members}) < 2:
            continue
        means.append({
            "candidate": candidate,
            "device": run_device,
            "validation_folds": sorted(row["validation_fold"] for row in members),
            "runs": sum(len(row["seeds"]) for row in members),
            "gflops": members[0]["gflops"],
            "accuracy": _spread([row["accuracy"]["mean"] for row in members]),
            "f1": _spread([row["f1"]["mean"] for row in members]),
        })  # fmt: skip
    return sorted(means, key=lambda row: (row["device"], -row["accuracy"]["mean"]))


def plot_inner_folds(selection: list[dict[str, Any]], path: Path) -> bool:
    """The candidates validated on several inner folds, a marker per validation fold (its mean over seeds) and each
    candidate's mean over the folds: how far a fold moves every candidate against how far candidates differ.
    Writes nothing (returns False) when no candidate was validated on several folds."""
    means = sorted(inner_fold_means(selection), key=lambda row: row["accuracy"]["mean"])
    if not means:
        return False
    from esc50_hf.training.reports import plt

    per_fold: dict[int, list[tuple[int, float]]] = {}  # fold -> (candidate's position, its mean over seeds there)
    for position, mean in enumerate(means):
        for row in selection:
            if (row["candidate"], row["device"]) == (mean["candidate"], mean["device"]):
                per_fold.setdefault(row["validation_fold"], []).append((position, row["accuracy"]["mean"]))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.3 * len(means) + 2), 4.2))
    folds = sorted(per_fold)
    for index, fold in enumerate(folds):  # markers only, each fold a little apart: the candidates are no series
        offset = 0.08 * (index - (len(folds) - 1) / 2)
        positions, scores = zip(*per_fold[fold])
        axes.plot([x + offset for x in positions], scores, "o", alpha=0.8, label=f"validated on fold {fold}")
    axes.plot(range(len(means)), [row["accuracy"]["mean"] for row in means], "k_", markersize=28, mew=2.5,
              label="mean over the folds")  # fmt: skip
    axes.set_xticks(range(len(means)), [f"{row['candidate']}\n({row['device']})" for row in means], fontsize=8)
    axes.set_ylabel("accuracy (mean over seeds)")
    axes.set_title("Inner folds (fold 5 unseen): each trained on the other three")
    _save_plot(figure, axes, path)
    return True


def plot_split(selection: list[dict[str, Any]], path: Path) -> bool:
    """The candidates of the selection split most of them share (same training and validation folds, same kind of
    device): every seed's score and the mean over seeds, cheapest network and shortest schedule first. Writes nothing
    (returns False) when no split holds two candidates."""
    split = _plotted_split(selection)
    if split is None:
        return False
    (train_folds, validation_fold, run_device), rows = split
    from esc50_hf.training.reports import plt

    rows = sorted(rows, key=lambda row: (row["gflops"], row["epochs"] or 0, len(row.get("teachers", []))))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(rows) + 2), 4.2))
    for position, row in enumerate(rows):
        scores = [seed["accuracy"] for seed in row["per_seed"]]
        axes.plot([position] * len(scores), scores, "o", color="tab:blue", alpha=0.6,
                  label="one training (seed)" if position == 0 else None)  # fmt: skip
        axes.plot([position], [row["accuracy"]["mean"]], "k_", markersize=28, mew=2.5,
                  label="mean over seeds" if position == 0 else None)  # fmt: skip
    labels = [f"{_name(row)}\n{row['gflops']:.2f} GFLOPs, {row['epochs'] or 0:g} epochs" for row in rows]
    axes.set_xticks(range(len(rows)), labels, fontsize=7)
    axes.set_ylabel(f"accuracy on fold {validation_fold}")
    axes.set_title(f"Selection split: train on folds {_folds(list(train_folds))}, validate on {validation_fold} "
                   f"({run_device}; fold 5 unseen)")  # fmt: skip
    _save_plot(figure, axes, path)
    return True


def _plotted_split(selection: list[dict[str, Any]]) -> tuple[tuple, list[dict[str, Any]]] | None:
    """The split most candidates share ((train folds, validation fold, device), its rows), if it holds two or more."""
    splits: dict[tuple, list[dict[str, Any]]] = {}
    for row in selection:
        splits.setdefault((tuple(row["train_folds"]), row["validation_fold"], row["device"]), []).append(row)
    if not splits:  # only test-fold runs
        return None
    split = max(splits.items(), key=lambda item: len(item[1]))
    return split if len(split[1]) >= 2 else None


def plot_name(selection: list[dict[str, Any]]) -> str | None:
    """The plot a report of these candidates has (main draws it): the inner folds' when candidates were validated on
    several folds, else the shared split's, else none."""
    if inner_fold_means(selection):
        return INNER_PLOT
    return SPLIT_PLOT if _plotted_split(selection) else None


def _save_plot(figure: Any, axes: Any, path: Path) -> None:
    from esc50_hf.training.reports import plt, save_compact_png

    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_compact_png(figure, path)
    plt.close(figure)


def inner_table(means: list[dict[str, Any]]) -> list[str]:
    columns = ["candidate", "device", "validated on (each trained on the other inner folds)", "runs in all"]
    columns += ["GFLOPs per clip", "accuracy", "macro-F1"]
    cells = [
        [row["candidate"], row["device"], _folds(row["validation_folds"]), row["runs"], f"{row['gflops']:.2f}",
         _mean_std(row["accuracy"]), _mean_std(row["f1"])]
        for row in means
    ]  # fmt: skip
    return _markdown_table(columns, cells, left=3)


def _markdown_table(columns: list[str], cells: list[list[Any]], left: int) -> list[str]:
    """A Markdown table: the first `left` columns aligned left, the others (numbers) right."""
    rule = ["---"] * left + ["---:"] * (len(columns) - left)
    return [f"| {' | '.join(map(str, row))} |" for row in (columns, rule, *cells)]


def _spread(values: list[float]) -> dict[str, float]:
    from esc50_hf.evaluation.metrics import mean_and_std

    return {**mean_and_std(values), "n": len(values)}


def _mean(values: list[float | None]) -> float | None:
    values = [value for value in values if value is not None]
    return round(float(np.mean(values)), 2) if values else None


def _score(spread: dict[str, float] | None) -> str:
    if spread is None:
        return "-"
    return f"{spread['mean']:.4f}" if spread["n"] == 1 else _mean_std(spread)


def _mean_std(spread: dict[str, float]) -> str:
    return f"{spread['mean']:.4f} ± {spread['std']:.4f}"


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _folds(folds: list[int]) -> str:
    return ",".join(str(fold) for fold in folds)


def table(rows: list[dict[str, Any]]) -> list[str]:
    columns = ["candidate", "train / validate", "device", "seeds", "parameters", "GFLOPs per clip"]
    columns += ["s per epoch (threads)", "accuracy", "macro-F1", "last weights: accuracy"]
    cells = [
        [_name(row), f"{_folds(row['train_folds'])} / {row['validation_fold']}", row["device"],
         ", ".join(str(seed) for seed in row["seeds"]), f"{row['parameters'] / 1e6:.2f} M", f"{row['gflops']:.2f}",
         f"{row['seconds_per_epoch']} ({_folds(row['threads'])})", _score(row["accuracy"]), _score(row["f1"]),
         _score(row["last_weights_accuracy"])]
        for row in rows
    ]  # fmt: skip
    return _markdown_table(columns, cells, left=4)


def _name(row: dict[str, Any]) -> str:
    """The candidate, with the number of its teachers (distillation; their trainings cost extra)."""
    teachers = len(row.get("teachers", []))
    return f"{row['candidate']} ({teachers} teacher{'s' if teachers > 1 else ''})" if teachers else row["candidate"]


def cross_validation(folder: Path) -> dict[str, Any]:
    path = folder / "cv_results.json"
    if not path.is_file():
        raise SystemExit(f"{folder} has no cv_results.json: pass a `train.py --cv` output folder")
    return json.loads(path.read_text())


def report(
    rows: list[dict[str, Any]],
    cv: dict[str, Any] | None,
    command: str,
    choice: str | None = None,
    previous: dict[str, Any] | None = None,
    title: str = "Training recipes compared",
    plots: dict[str, str] | None = None,
) -> str:
    """`plots`: the plot files written beside the report, by kind (`split`, `inner`)."""
    plots = plots or {}
    selection = [row for row in rows if not row["sees_test_fold"]]
    test = [row for row in rows if row["sees_test_fold"]]
    when = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        f"# {title}",
        "",
        f"Generated {when} by `{command}` from the run folders' `metrics.json` and `training_config.json`.",
        "Scores are mean ± population std over the seeds; GFLOPs are torch's flop count of one 5-s clip; seconds",
        "per epoch are training only, with the threads of each process; device is the GPU a run used, else CPU.",
        "",
        "## Selection: fold 5 never used",
        "",
        *table(selection),
        "",
        *(
            [f"![Every training of the candidates on one selection split]({plots['split']})", ""]
            if "split" in plots
            else []
        ),
        *_inner_section(selection, plots.get("inner")),
        '"accuracy" is the saved model\'s (the moving average of the weights when the recipe has `ema_decay` > 0);',
        '"last weights" is the same run\'s final weights, scored on the same fold.',
    ]
    if choice:
        lines += ["", f"**The choice.** {choice}"]
    if test:
        lines += ["", f"## Fold {TEST_FOLD}, the test fold", "", *table(test)]
        for row in test:
            chosen_from = ", ".join(f"`{name}`" for name in row.get("chosen_from", [])) or "no candidate above"
            lines += [
                "",
                f"`{row['candidate']}` ({row['device']}) is the recipe of {chosen_from} on the selection splits; "
                "per seed:",
                "",
            ]
            lines += ["| seed | accuracy | macro-F1 | run |", "| ---: | ---: | ---: | --- |"]
            for seed, run in zip(row["per_seed"], row["runs"]):
                lines.append(f"| {seed['seed']} | {seed['accuracy']:.4f} | {seed['f1']:.4f} | `{Path(run).name}` |")
    if cv is not None:
        summary = cv["summary"]
        lines += ["", "## 5-fold cross-validation of the chosen recipe", ""]
        lines += ["| fold | accuracy | macro-F1 | s per epoch |", "| --- | ---: | ---: | ---: |"]
        for fold, result in cv["folds"].items():
            lines.append(
                f"| {fold} | {result['accuracy']:.4f} | {result['f1']:.4f} | {result.get('seconds_per_epoch')} |"
            )
        lines.append(f"| **mean ± std** | **{_mean_std(summary['accuracy'])}** | **{_mean_std(summary['f1'])}** | |")
        if summary.get("folds_missing"):
            lines.append(f"\nFolds not finished: {summary['folds_missing']}.")
    if previous is not None:
        lines += ["", "## For reference", "", *previous_lines(previous)]
    return "\n".join(lines) + "\n"


def _inner_section(selection: list[dict[str, Any]], plot: str | None = None) -> list[str]:
    means = inner_fold_means(selection)
    if not means:
        return []
    heading = "Candidates validated on several inner folds: mean ± std over the folds of each fold's mean over seeds:"
    figure = [f"![Accuracy of each candidate on each inner fold]({plot})", ""] if plot else []
    return [heading, "", *inner_table(means), "", *figure]


def previous_recipe(folder: Path) -> dict[str, Any]:
    """The previously shipped recipe's fold-5 trainings and cross-validation, from the reports it shipped with."""
    from esc50_hf.training.model_folder import CROSS_VALIDATION_FILE, REPEATED_RUNS_FILE, ModelFolder

    shipped = ModelFolder(folder)
    metrics = shipped.metrics
    repeated, cv = shipped.optional(REPEATED_RUNS_FILE), shipped.optional(CROSS_VALIDATION_FILE)
    runs = [metrics, *(repeated["runs"] if repeated is not None else [])]
    cv = cv["summary"] if cv is not None else None
    return {
        "folder": str(folder),
        "validation_fold": metrics["validation_fold"],
        "trainings": len(runs),
        "accuracy": _spread([run["accuracy"] for run in runs]),
        "f1": _spread([run["f1"] for run in runs]),
        "seconds_per_epoch": [run.get("seconds_per_epoch") for run in runs],
        "threads": sorted({run.get("torch_threads_per_process") for run in runs}),
        "cross_validation": cv,
        **network_cost(folder),
    }


def previous_lines(previous: dict[str, Any]) -> list[str]:
    cv = previous["cross_validation"]
    return [
        f"- For reference, the recipe of `{previous['folder']}`: "
        f"{previous['parameters'] / 1e6:.2f} M parameters, "
        f"{previous['gflops']:.2f} GFLOPs per clip; fold {previous['validation_fold']} over {previous['trainings']} "
        f"trainings: accuracy {_score(previous['accuracy'])}, macro-F1 {_score(previous['f1'])}"
        + (
            f"; 5-fold cross-validation: accuracy {_mean_std(cv['accuracy'])}, macro-F1 {_mean_std(cv['f1'])}"
            if cv
            else ""
        )
        + f" (seconds per epoch {', '.join(str(value) for value in previous['seconds_per_epoch'])} on "
        f"{_folds(previous['threads'])} threads)."
    ]


def refresh_page(
    path: Path,
    rows: list[dict[str, Any]],
    cv: dict[str, Any] | None,
    choice: str | None,
    previous: dict[str, Any] | None = None,
    block: str = PAGE_BLOCK,
    brief: bool = False,
    plot: str | None = None,
) -> None:
    """Rewrites the page's block: the test-fold lines, the CV, the previous recipe, then the selection (`brief`:
    only its means over inner folds, not every split), its plot (`plot`: a path relative to the page) and the
    choice."""
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path} has no {start} ... {end} block to refresh")
    test = [row for row in rows if row["sees_test_fold"]]
    lines = []
    for row in test:
        lines.append(
            f"- `{row['candidate']}` trained {_times(len(row['seeds']))} on folds {_folds(row['train_folds'])}, "
            f"scored on fold {row['validation_fold']}: accuracy **{_score(row['accuracy'])}**, macro-F1 "
            f"**{_score(row['f1'])}** ({row['parameters'] / 1e6:.2f} M parameters, {row['gflops']:.2f} GFLOPs per "
            f"clip, {row['train_minutes']:.0f} min per training on {row['device']}, {_folds(row['threads'])} "
            "thread(s) per process)."
        )
    if cv is not None:
        summary = cv["summary"]
        lines.append(
            f"- 5-fold cross-validation: accuracy **{_mean_std(summary['accuracy'])}**, "
            f"macro-F1 **{_mean_std(summary['f1'])}**"
            + (f" (folds {summary['folds_missing']} missing)" if summary.get("folds_missing") else "")
            + "."
        )
    if previous is not None:
        lines += previous_lines(previous)
    selection = [row for row in rows if not row["sees_test_fold"]]
    lines += ["", f"Selection (fold {TEST_FOLD} unseen):", ""]
    if brief:  # the candidates of several inner folds by their means, the others by their rows
        averaged = {(row["candidate"], row["device"]) for row in inner_fold_means(selection)}
        selection = [row for row in selection if (row["candidate"], row["device"]) not in averaged]
        lines += _inner_section([row for row in rows if not row["sees_test_fold"]])
        lines += [*table(selection), ""] if selection else []
    else:
        lines += [*table(selection), ""] + _inner_section(selection)
    if plot:
        lines += [f"![The selection runs, plotted]({plot})", ""]
    if choice:
        lines += [f"**The choice.** {choice}"]
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n" + "\n".join(lines) + f"\n{end}{tail}")


def readme_lines(document: dict[str, Any], link: str = RESULTS_LINK) -> list[str]:
    """The README's three results lines, from a `recipes.json` document: the shipped recipe's trainings on the test
    fold (mean ± std), its 5-fold cross-validation, and its cost (network, compute per clip, training time on the
    CPU); each ends with a link to the results page (`link`, relative to the README)."""
    tested = [row for row in document["candidates"] if row["sees_test_fold"] and row["device"] == "CPU"]
    if len(tested) != 1 or not document.get("cross_validation"):
        raise SystemExit("the README lines need one recipe trained on the CPU for the test fold, and its --cv results")
    (row,) = tested
    summary, more = document["cross_validation"]["summary"], f"([results]({link}))"
    trainings = len(row["seeds"])
    return [
        f"- Fold {row['validation_fold']} (the test fold), the shipped recipe `{row['candidate']}` trained "
        f"{_times(trainings)} on folds {_folds(row['train_folds'])}: accuracy **{_score(row['accuracy'])}**, "
        f"macro-F1 **{_score(row['f1'])}** {more}.",
        f"- 5-fold cross-validation: accuracy **{_mean_std(summary['accuracy'])}**, macro-F1 "
        f"**{_mean_std(summary['f1'])}** {more}.",
        f"- Cost: {row['parameters'] / 1e6:.2f} M parameters, {row['gflops']:.2f} GFLOPs per 5-s clip, "
        f"{row['train_minutes']:.0f} min per training on the CPU ({row['hardware']}; the mean of "
        f"{trainings} trainings, {' or '.join(map(str, row['threads']))} thread(s) per process) {more}.",
    ]


def main(argv: list[str] | None = None) -> None:
    import sys

    args = parse_args(argv)
    if args.from_json:  # the run folders are gone: the page and the README lines from what they recorded
        source = Path(args.from_json)
        document = json.loads(source.read_text())
        selection = [row for row in document["candidates"] if not row["sees_test_fold"]]
        name = plot_name(selection)
        plot = source.parent / name if name and (source.parent / name).is_file() else None
        _refresh(args, document, plot)
        return
    rows = summarize([read_run(Path(folder)) for folder in args.runs])
    cv = cross_validation(Path(args.cv)) if args.cv else None
    command = "python bench/recipes.py " + " ".join(sys.argv[1:] if argv is None else argv)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    previous = previous_recipe(Path(args.previous)) if args.previous else None
    document = {
        "candidates": rows,
        "inner_fold_means": inner_fold_means([row for row in rows if not row["sees_test_fold"]]),
        "cross_validation": cv,
        "choice": args.choice,
        "previous": previous,
    }
    (output / "recipes.json").write_text(json.dumps(document, indent=2))
    selection = [row for row in rows if not row["sees_test_fold"]]
    plots = {}  # the inner folds' plot when candidates were validated on several folds, else the one split's
    for kind, name, plot in (("inner", INNER_PLOT, plot_inner_folds), ("split", SPLIT_PLOT, plot_split)):
        if not plots and plot(selection, output / name):
            plots[kind] = name
        else:
            (output / name).unlink(missing_ok=True)  # a stale plot of an earlier report
    (output / "RECIPES.md").write_text(report(rows, cv, command, args.choice, previous, args.title, plots))
    print(f"wrote {output / 'RECIPES.md'}")
    plot = next(iter(plots.values()), None)
    _refresh(args, document, output / plot if plot else None)


def _refresh(args: argparse.Namespace, document: dict[str, Any], plot: Path | None) -> None:
    """`--page`: its block from the document, linking `plot` relative to the page; `--print-readme-lines`."""
    if args.page:
        page = Path(args.page)
        link = Path(os.path.relpath(plot, page.resolve().parent)).as_posix() if plot else None
        rows, cv, choice, previous = (document[key] for key in ("candidates", "cross_validation", "choice", "previous"))
        refresh_page(page, rows, cv, choice, previous, args.page_block, args.page_brief, link)
        print(f"refreshed the {args.page_block} block of {page}")
    if args.print_readme_lines:
        print("\n".join(readme_lines(document)))


if __name__ == "__main__":
    main()
