"""Ships the `ft-pair` recipe: the shipping plan of bench/robust_recipe_choice.md ("Rule 3 for `ft-pair`"), as run.

    python bench/robust_recipe/ship.py folders --runs RUNS --data-dir DIR [--model models/esc50-mel-cnn]
    python bench/robust_recipe/ship.py reports --runs RUNS --data-dir DIR [--model ...]
    python bench/robust_recipe/ship.py timed --runs RUNS --data-dir DIR [--model ...]   # on an idle machine

`RUNS` holds the trainings, each a second stage (`ft-stage2.yaml --learning_rate 1e-3`) of its own first stage:
`ft-s0` ... `ft-s5` (folds 1-4, rule 3's), `ft-inner-s0`, `ft-inner-s0b`, `ft-inner-s1` (folds 1-3, round 5's
candidates), `cv-ft-s0` and `cv-ft-s3` (the 5-fold CV's, `train.py --cv` over folds 1-4) and `own/pair-s<split>`
(`bench/own_classes.py pair`: the 40-class pairs).

`folders` makes every model folder of the recipe with `esc50-hf merge`, in float16 as the shipped one, into
`RUNS/ship/`: the shipped pair (`ft-s0` + `ft-s3`), the CV pairs (`cv-pair/fold-K`: seeds 0 and 3 of the CV's fold
K; fold 5 is the shipped pair, and `cv-pair/cv_results.json` sums the five up), the repeated runs (rule 3's other
pairs, seeds 1+4 and 2+5) and round 5's candidates (`ft-pair-shared`, `ft-pair`; `ft` is one training). Then
`bench/recipes.py` over all of them writes the recipe's records (bench/robust_recipe/RECIPES.md and recipes.json:
the README's results lines and the card's selection table) and docs/results.md's `ft-pair` block; the shipped pair
is copied over `--model` (the model it replaces kept in `RUNS/ship/previous` for its baseline result; its reports
are bench/stem_long_recipe, the records' reference), its calibration and unknown threshold fitted by
`bench/calibration.py` on the CV's fold-3 and fold-4 pairs (trained on the other four folds, fold 5 among them; the fit
never sees a fold-5 clip), and its card rendered. Merges already made are kept; a second call redoes the rest.

`reports` regenerates the shipped model's accuracy reports (corruptions, "none of these", events, test-time
averaging; UNKNOWN.md's held-out classes once all five 40-class pairs are finished), `timed` its timed ones (speed,
live latency, the browser page, the servers under load), which want an idle machine: `bench/run.py` marks its
report PRELIMINARY otherwise.
"""

import argparse
import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from esc50_hf.paths import DEFAULT_MODEL_DIR

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # bench.own_classes

SHIPPED_SEEDS = (0, 3)  # rule 3's first pair: ft-s0 + ft-s3
REPEATED_PAIRS = ((1, 4), (2, 5))  # rule 3's other pairs, fixed before any was trained
CV_FOLDS = (1, 2, 3, 4)
HELD_OUT_FOLDS = (3, 4)  # the calibration's out-of-fold pairs (the plan: the CV's fold-3 and fold-4 pairs)
CHOICE = (
    "Round 5 of bench/robust_recipe_choice.md, on the inner split (train 1-3, validate 4), rule written before its "
    "runs: a pair qualifies with clean fold-4 accuracy at least 1 point above `ft` and corrupted accuracy at or above "
    "`ft`'s; `ft-pair` (two independent two-stage trainings, their probabilities averaged) qualified, then passed "
    "rule 3 on fold 5 (three pairs, mean >= 0.842, corrupted +5 points over the previous model)."
)
SHIPPED_ROW = "ft-pair, shipped now (the seed 0+3 pair, float16)"  # its row in bench/ROBUSTNESS.md
PREVIOUS_RECIPE = "bench/stem_long_recipe"  # the reports of the model replaced (`stem-long`), kept for the records
RESULTS_PAGE, PAGE_BLOCK = "docs/results.md", "ft-pair"  # the page's block that bench/recipes.py writes
ROUND5 = {  # the card's selection: round 5's candidates on the inner split (train 1-3, validate 4)
    "ft": ("ft-inner-s0",),
    "ft-pair-shared": ("ft-inner-s0", "ft-inner-s0b"),
    "ft-pair": ("ft-inner-s0", "ft-inner-s1"),
}


def merged(members: list[Path], output: Path, data_dir: str) -> Path:
    """`esc50-hf merge MEMBERS --float16` into `output` (a finished merge of them there is kept)."""
    from esc50_hf.training.merge import merge_models

    output.parent.mkdir(parents=True, exist_ok=True)
    merge_models(members, output, data_dir=data_dir, float16=True, keep_existing=True)
    return output


def folders(runs: Path, data_dir: str, model: Path) -> None:
    from esc50_hf.training.cross_validation import write_cross_validation_summary
    from esc50_hf.training.model_folder import WEIGHTS_FILE, ModelFolder
    from esc50_hf.training.reports import CALIBRATION_TEST_FILE

    ship = runs / "ship"
    page = (ROOT / RESULTS_PAGE).read_text()
    if f"<!-- {PAGE_BLOCK}:start -->" not in page:
        raise SystemExit(f"{RESULTS_PAGE} has no {PAGE_BLOCK} block for bench/recipes.py: add its section first")
    previous = ship / "previous"  # the model being replaced, as it was: the records' reference and its baseline
    if not previous.is_dir():
        if "merged_from" in json.loads((model / "metrics.json").read_text()):
            raise SystemExit(f"{model} is a merged model already and {previous} is gone: restore the previous model")
        shutil.copytree(model, previous)
    cv = ship / "cv-pair"
    for fold in CV_FOLDS:
        members = [runs / f"cv-ft-s{seed}" / f"fold-{fold}" for seed in SHIPPED_SEEDS]
        if all(ModelFolder(member).complete for member in members):
            merged(members, cv / f"fold-{fold}", data_dir)
        else:  # still training: cv_results.json lists the fold as missing, a second call merges it
            print(f"CV fold {fold}: its trainings are not finished, left out for now")
    shipped = merged([runs / f"ft-s{seed}" for seed in SHIPPED_SEEDS], ship / model.name, data_dir)  # the card's name
    if not (cv / "fold-5").is_dir():
        shutil.copytree(shipped, cv / "fold-5")
    write_cross_validation_summary(cv)
    repeats = [
        merged([runs / f"ft-s{a}", runs / f"ft-s{b}"], ship / f"pair-s{a}-s{b}", data_dir) for a, b in REPEATED_PAIRS
    ]
    # bench/recipes.py names a candidate after its folders (`ft-pair-s0` -> `ft-pair`): links under those names
    named = {f"test/ft-pair-s{index}": folder for index, folder in enumerate([shipped, *repeats])}
    for candidate, members in ROUND5.items():
        one = len(members) == 1  # `ft`: one training, nothing to merge
        paths = [runs / name for name in members]
        named[f"inner/{candidate}-s0"] = paths[0] if one else merged(paths, ship / "round5" / candidate, data_dir)
    for name, folder in named.items():
        link = ship / "named" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(folder.resolve(), target_is_directory=True)
    records = ROOT / "bench" / "robust_recipe"
    title = "The ft-pair recipe: round 5 and its test runs"
    _run(sys.executable, "bench/recipes.py", *(ship / "named" / name for name in named), "--cv", cv,
         "--previous", PREVIOUS_RECIPE, "--output-dir", records, "--title", title,
         "--choice", CHOICE, "--page", RESULTS_PAGE, "--page-block", PAGE_BLOCK)  # fmt: skip

    # the shipped pair is copied and calibrated once (its calibration_test.json says so: `esc50-hf calibrate` wrote it):
    # a second call keeps what the reports added to the folder (the unknown figures, the event thresholds)
    held_out = [cv / f"fold-{fold}" for fold in HELD_OUT_FOLDS]
    if not all(ModelFolder(folder).complete for folder in held_out):
        raise SystemExit(f"the calibration's out-of-fold pairs {', '.join(map(str, held_out))} are not all finished")
    calibrated = (model / CALIBRATION_TEST_FILE).is_file()
    if not (calibrated and filecmp.cmp(model / WEIGHTS_FILE, shipped / WEIGHTS_FILE, shallow=False)):
        shutil.rmtree(model)
        shutil.copytree(shipped, model)
        _run(sys.executable, "bench/calibration.py", "--model", model, "--held-out", *held_out, "--data-dir", data_dir)
    card(runs, model)


def card(runs: Path, model: Path) -> None:
    """Renders the shipped model's card from its folder and the records (again after the reports: their figures)."""
    from esc50_hf.cli import main as cli
    from esc50_hf.training.model_folder import BASELINE_FILE

    ship = runs / "ship"
    baseline = ship / "previous" / BASELINE_FILE  # the baseline's result stays (`esc50-hf baseline`)
    command = ["card", "--model", str(model), "--cv", str(ship / "cv-pair" / "cv_results.json")]
    command += [
        "--baseline",
        str(baseline),
        "--repeated-runs",
        *(str(ship / f"pair-s{a}-s{b}") for a, b in REPEATED_PAIRS),
    ]
    command += ["--selection", str(ROOT / "bench" / "robust_recipe" / "recipes.json")]
    assert cli(command) == 0


def reports(runs: Path, data_dir: str, model: Path) -> None:
    from bench.own_classes import NUM_SPLITS
    from esc50_hf.training.model_folder import ModelFolder

    ship, python = runs / "ship", sys.executable
    held_out = [str(ship / "cv-pair" / f"fold-{fold}") for fold in HELD_OUT_FOLDS]
    # the held-out-classes section of UNKNOWN.md: the 40-class pairs finished so far, beside those the report
    # measured earlier (a split takes longer than a session; the report says how many of the five it covers)
    splits = [runs / "own" / f"pair-s{split}" for split in range(NUM_SPLITS)]
    splits = [split for split in splits if ModelFolder(split).complete]
    inner = merged([runs / "ft-inner-s0", runs / "ft-inner-s1"], ship / "round5" / "ft-pair", data_dir)
    _run(
        python,
        "bench/robustness.py",
        "--model",
        f"{SHIPPED_ROW}={_in_root(model)}",
        "--data-dir",
        data_dir,
        "--fold",
        "5",
    )
    _run(python, "bench/unknown.py", "--model", model, "--held-out", *held_out, "--class-split-models", *splits,
         "--add-splits", "--data-dir", data_dir)  # fmt: skip
    _run(python, "bench/events.py", "--model", model, "--held-out", inner, "--data-dir", data_dir)
    _run(python, "bench/tta.py", "--model", model, "--data-dir", data_dir)
    card(runs, model)  # with the unknown figures


def timed(runs: Path, data_dir: str, model: Path) -> None:
    for script in ("bench/run.py", "bench/live_latency.py", "bench/web.py"):
        _run(sys.executable, script, "--model", model, "--data-dir", data_dir)
    for script in ("bench/load.py", "bench/live_load.py"):  # servers under load: no clips needed
        _run(sys.executable, script, "--model", model)


def _run(*command: Any) -> None:
    """Runs a script in ROOT; paths inside the checkout are given relative to it (the reports print them)."""
    words = [_in_root(part) if isinstance(part, Path) else str(part) for part in command]
    print("$", " ".join(words), file=sys.stderr)
    subprocess.run(words, cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--runs", type=Path, required=True, help="the folder of the trainings")
    parser.add_argument("--data-dir", required=True, help="ESC-50 in the official layout")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="the shipped folder, replaced")
    args = parser.parse_args(argv)
    STEPS[args.step](
        args.runs.resolve(), str(Path(args.data_dir).resolve()), args.model.resolve()
    )  # the scripts run in ROOT


def _in_root(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


STEPS = {"folders": folders, "reports": reports, "timed": timed}

if __name__ == "__main__":
    main()
