"""Training end to end on the fixtures: the three launchers, resume, crash safety, outputs, publishing, CV.

Every test that trains, or reads the smoke run (`python train.py` on the fixtures, ~30 s), is marked `slow`; the
others check the pieces in-process (`make test-fast` runs those).
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import pytest
import torch
from huggingface_hub import ModelCard

from esc50_hf.training.arguments import parse_args

from .local_hub import TOKEN, LocalHub

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"
LAUNCHERS = {
    "python": [sys.executable, str(REPO / "train.py")],
    "accelerate": [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", str(REPO / "train.py")],
    "accelerate-ddp": [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", str(REPO / "train.py"),
    ],
}  # fmt: skip


def run_training(launcher: str, data_dir: Path, output_dir: Path, *extra: str, env: dict | None = None):
    command = [
        *LAUNCHERS[launcher],
        "--config",
        str(SMOKE),
        "--data_dir",
        str(data_dir),
        "--output_dir",
        str(output_dir),
    ]
    return subprocess.run(
        [*command, *extra], capture_output=True, text=True, timeout=600, check=False, env=env or os.environ.copy()
    )


def assert_succeeded(completed: subprocess.CompletedProcess) -> None:
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]


def reuse_features(*runs: Path, into: Path) -> Path:
    """`into`, a new output folder, holding the feature caches of the finished `runs` where train.py and `--cv` look
    by default (`<output_dir>/feature_cache`): a run of the same clips, feature settings, augmentation and seed reads
    the log-mels those runs computed (the same ones, by design) instead of spending seconds computing them again. The
    cache is keyed, so a run of another recipe still computes its own."""
    for run in runs:
        shutil.copytree(run / "feature_cache", into / "feature_cache", dirs_exist_ok=True)
    return into


def log_history(output_dir: Path) -> list[dict]:
    """The Trainer's log of the whole run, from the last checkpoint's trainer state."""
    checkpoint = sorted(output_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))[-1]
    return json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]


def smoke_setup(**options):
    """The smoke recipe as `train.py` would parse it, with `options` given as flags."""
    flags = [str(item) for name, value in options.items() for item in (f"--{name}", value)]
    return parse_args(["--config", str(SMOKE), *flags])


def first_training_loss(output_dir: Path) -> float:
    return next(entry["loss"] for entry in log_history(output_dir) if "loss" in entry)


def final_evaluation(output_dir: Path) -> tuple[float, float, float]:
    last = [entry for entry in log_history(output_dir) if "eval_loss" in entry][-1]
    return last["eval_loss"], last["eval_accuracy"], last["eval_f1"]


@pytest.fixture(scope="module")
def hub_storage(tmp_path_factory):
    return tmp_path_factory.mktemp("hub-storage")


@pytest.fixture(scope="module")
def smoke_run(esc50_dir, tmp_path_factory, hub_storage) -> Path:
    """`python train.py` on the fixtures, publishing to a local server that stands in for the Hub."""
    output_dir = tmp_path_factory.mktemp("smoke") / "model"
    with LocalHub(hub_storage) as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0"}
        completed = run_training(
            "python", esc50_dir, output_dir, "--push_to_hub", "true", "--hub_model_id", "tester/esc50-smoke", env=env
        )
    assert_succeeded(completed)
    return output_dir


@pytest.mark.slow
def test_outputs_form_a_hub_ready_model_folder(smoke_run):
    for name in (
        "config.json", "model.safetensors", "preprocessor_config.json", "README.md", "metrics.json",
        "per_class_report.csv", "confusion_matrix.png", "training_curves.png",
        "configuration_esc50_cnn.py", "modeling_esc50_cnn.py", "feature_extraction_esc50.py", "labels.py",
    ):  # fmt: skip
        assert (smoke_run / name).is_file(), name
    assert "AutoModelForAudioClassification" in json.loads((smoke_run / "config.json").read_text())["auto_map"]
    preprocessor = json.loads((smoke_run / "preprocessor_config.json").read_text())
    assert preprocessor["std"] != 1.0 and preprocessor["mean"] != 0.0  # statistics of the training folds
    assert list(smoke_run.glob("runs/*/events.out.tfevents.*"))  # TensorBoard
    assert len((smoke_run / "per_class_report.csv").read_text().splitlines()) == 51
    config = json.loads((smoke_run / "config.json").read_text())  # calibrated on its evaluation fold's 50 clips
    assert config["calibration"]["num_clips"] == 50 and config["calibration"]["fitted_on"].startswith("fold 5")
    assert config["calibration_temperature"] > 0 and (smoke_run / "reliability.png").is_file()
    assert "Calibrated scores" in (smoke_run / "README.md").read_text()
    for plot in ("confusion_matrix.png", "training_curves.png"):
        assert matplotlib.image.imread(smoke_run / plot).shape[0] > 300


@pytest.mark.slow
def test_model_card_carries_the_measured_results(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    card = ModelCard.load(smoke_run / "README.md")
    assert card.data.license == "cc-by-nc-3.0"
    assert "audio-classification" in card.data.tags
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert results == {"accuracy": round(metrics["accuracy"], 4), "f1": round(metrics["f1"], 4)}
    fold5 = {(r.dataset_type, r.dataset_config, r.dataset_split) for r in card.data.eval_results}
    assert fold5 == {("esc50-hf/esc50", "fold5", "validation")} and card.data.datasets == ["esc50-hf/esc50"]
    assert [r.metric_args for r in card.data.eval_results] == [None, {"average": "macro"}]
    assert f"{metrics['accuracy']:.4f}" in card.text and "{{" not in card.text


@pytest.mark.slow
def test_card_command_adds_baseline_and_cross_validation(smoke_run, tmp_path):
    from esc50_hf.cli import main
    from esc50_hf.training.cross_validation import summarize_cross_validation

    folder = tmp_path / "model"
    shutil.copytree(smoke_run, folder, ignore=shutil.ignore_patterns("checkpoint-*", "feature_cache"))
    metrics = json.loads((folder / "metrics.json").read_text())
    baseline = {"model": "mlp", "fold": 5, "num_clips": 20, "accuracy": 0.125, "f1": 0.0625, "per_class": {}}
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    cv = summarize_cross_validation({5: metrics, 2: {**metrics, "accuracy": 0.5, "f1": 0.25}})
    (tmp_path / "cv.json").write_text(json.dumps(cv))

    assert main(["card", "--model", str(folder), "--baseline", str(tmp_path / "baseline.json"),
                 "--cv", str(tmp_path / "cv.json")]) == 0  # fmt: skip
    card = ModelCard.load(folder / "README.md")
    assert "| 0.1250 | 0.0625 |" in card.text  # the baseline row
    mean_accuracy = (0.5 + metrics["accuracy"]) / 2
    assert f"accuracy **{mean_accuracy:.4f} ± {abs(0.5 - metrics['accuracy']) / 2:.4f}**" in card.text
    assert "folds 1, 3, 4 not finished yet" in card.text and "{{" not in card.text
    assert "per_class" not in json.loads((folder / "baseline_metrics.json").read_text())  # headline numbers only
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert results == {"accuracy": round(metrics["accuracy"], 4), "f1": round(metrics["f1"], 4)}


@pytest.mark.slow
def test_card_command_adds_repeated_runs_of_the_same_recipe_only(smoke_run, tmp_path):
    from esc50_hf.cli import main

    folder, again, other_recipe = tmp_path / "model", tmp_path / "again", tmp_path / "other"
    for copy in (folder, again, other_recipe):
        shutil.copytree(smoke_run, copy, ignore=shutil.ignore_patterns("checkpoint-*", "feature_cache", "runs"))
    metrics = json.loads((folder / "metrics.json").read_text())
    _edit_json(again / "training_config.json", seed=7, output_dir="elsewhere", torch_threads=1)
    _edit_json(again / "metrics.json", accuracy=metrics["accuracy"] + 0.1, f1=0.5)
    _edit_json(other_recipe / "training_config.json", learning_rate=0.5)

    with pytest.raises(SystemExit, match="differs in learning_rate"):
        main(["card", "--model", str(folder), "--repeated-runs", str(other_recipe)])
    assert main(["card", "--model", str(folder), "--repeated-runs", str(again)]) == 0
    card = ModelCard.load(folder / "README.md")
    assert f"| again | 7 | {metrics['accuracy'] + 0.1:.4f} | 0.5000 |" in card.text
    assert f"Over all 2 runs: accuracy {metrics['accuracy'] + 0.05:.4f} ± 0.0500" in card.text
    assert "{{" not in card.text
    # a second stage, repeated from another first stage, is a run of the same recipe; one from no first stage is not
    _edit_json(folder / "training_config.json", model_name_or_path="stage1-seed0")
    _edit_json(again / "training_config.json", model_name_or_path="stage1-seed7")
    assert main(["card", "--model", str(folder), "--repeated-runs", str(again)]) == 0
    _edit_json(again / "training_config.json", model_name_or_path=None)
    with pytest.raises(SystemExit, match="differs in model_name_or_path"):
        main(["card", "--model", str(folder), "--repeated-runs", str(again)])


def _edit_json(path, **changes):
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.slow
def test_saved_training_config_is_a_complete_recipe(smoke_run):
    """The card's reproduction command passes the folder's training_config.json back to train.py."""
    saved = json.loads((smoke_run / "training_config.json").read_text())
    assert parse_args(["--config", str(smoke_run / "training_config.json")]).recipe() == saved
    assert saved["seed"] == 7 and saved["num_mel_bins"] == 32 and saved["optim"]
    assert "training_args.bin" not in {path.name for path in smoke_run.iterdir()}  # a pickle nothing reads


@pytest.mark.slow
def test_reported_metrics_are_those_of_the_final_model(smoke_run, tmp_path):
    """`esc50-hf evaluate` on the saved folder reproduces metrics.json (no best-epoch picking)."""
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    output = tmp_path / "scores.json"
    completed = subprocess.run(
        [sys.executable, "-m", "esc50_hf.cli", "evaluate", "--model", str(smoke_run), "--fold", "5",
         "--data-dir", str(Path(metrics_data_dir(smoke_run))), "--output", str(output)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert_succeeded(completed)
    scores = json.loads(output.read_text())
    assert scores["accuracy"] == pytest.approx(metrics["accuracy"]) and scores["f1"] == pytest.approx(metrics["f1"])
    assert "macro-F1" in completed.stdout and "dog" in completed.stdout


def metrics_data_dir(model_dir: Path) -> str:
    return json.loads((model_dir / "training_config.json").read_text())["data_dir"]


@pytest.mark.slow
def test_push_uploads_exactly_the_model_folder(smoke_run, hub_storage):
    uploaded = {
        path.relative_to(hub_storage / "tester" / "esc50-smoke") for path in hub_storage.rglob("*") if path.is_file()
    }
    local = {
        path.relative_to(smoke_run)
        for path in smoke_run.rglob("*")
        if path.is_file() and not path.relative_to(smoke_run).parts[0].startswith(("checkpoint-", "feature_cache"))
    }
    assert uploaded == local
    assert (hub_storage / "tester" / "esc50-smoke" / "model.safetensors").read_bytes() == (
        smoke_run / "model.safetensors"
    ).read_bytes()


@pytest.mark.slow
def test_push_without_token_fails_before_training(esc50_dir, tmp_path):
    output_dir = tmp_path / "model"
    output_dir.mkdir()
    (output_dir / "keep.txt").write_text("earlier work")
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"} | {"HF_HOME": str(tmp_path / "home")}
    started = time.perf_counter()
    completed = run_training("python", esc50_dir, output_dir, "--push_to_hub", "true", "--hub_model_id", "a/b", env=env)
    assert completed.returncode != 0
    assert "needs a Hugging Face token" in completed.stderr
    assert time.perf_counter() - started < 60
    assert sorted(path.name for path in output_dir.iterdir()) == ["keep.txt"]


@pytest.mark.slow
def test_accelerate_launch_single_process(esc50_dir, tmp_path, smoke_run):
    """The same run as `python train.py` (which computed the features this one reads from its cache)."""
    completed = run_training("accelerate", esc50_dir, reuse_features(smoke_run, into=tmp_path / "model"))
    assert_succeeded(completed)
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["processes"] == 1
    same_seed_run = json.loads((smoke_run / "metrics.json").read_text())
    timings = {"train_seconds": metrics["train_seconds"], "seconds_per_epoch": metrics["seconds_per_epoch"]}
    assert metrics == same_seed_run | timings


@pytest.mark.slow
def test_two_process_ddp_on_cpu(esc50_dir, tmp_path, smoke_run):
    """Real DDP (gloo, 2 processes); the loss is a per-batch mean, not multiplied by the world size."""
    completed = run_training("accelerate-ddp", esc50_dir, reuse_features(smoke_run, into=tmp_path / "model"))
    assert_succeeded(completed)
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["processes"] == 2
    assert metrics["num_clips"] == 50 and 0.0 <= metrics["accuracy"] <= 1.0
    single, ddp = first_training_loss(smoke_run), first_training_loss(tmp_path / "model")
    assert abs(ddp - single) < 1.0, (single, ddp)


@pytest.mark.slow
def test_resume_from_an_interrupted_run_reaches_the_same_result(esc50_dir, tmp_path, smoke_run):
    """An output folder holding only the epoch-1 checkpoint (what an interrupted run leaves) resumes to the end."""
    first_checkpoint = sorted(smoke_run.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))[0]
    interrupted = reuse_features(smoke_run, into=tmp_path / "model")
    shutil.copytree(first_checkpoint, interrupted / first_checkpoint.name)
    completed = run_training("python", esc50_dir, interrupted, "--resume_from_checkpoint", "latest")
    assert_succeeded(completed)
    resumed = json.loads((interrupted / "metrics.json").read_text())
    original = json.loads((smoke_run / "metrics.json").read_text())
    assert (resumed["accuracy"], resumed["f1"]) == (original["accuracy"], original["f1"])
    assert final_evaluation(interrupted) == final_evaluation(smoke_run)  # full-precision eval loss of the last epoch
    assert (interrupted / "model.safetensors").read_bytes() == (smoke_run / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_cross_validation_trains_every_fold_and_keeps_finished_ones(esc50_dir, smoke_run, tmp_path):
    from esc50_hf.training.cross_validation import cross_validate

    reuse_features(smoke_run, into=tmp_path)  # the same clips and seed: one cache, already computed

    setup = smoke_setup(data_dir=esc50_dir, output_dir=tmp_path, num_train_epochs=1, report_to="none")
    partial = cross_validate(setup.replace(cv_folds=[2]))
    assert partial["summary"]["folds_done"] == [2] and partial["summary"]["folds_missing"] == [1, 3, 4, 5]
    fold_2_weights = (tmp_path / "fold-2" / "model.safetensors").stat().st_mtime_ns
    (tmp_path / "cv_results.json").unlink()
    assert cross_validate(setup.replace(cv_folds=[])) == partial  # summary only
    assert json.loads((tmp_path / "cv_results.json").read_text()) == partial

    summary = cross_validate(setup)
    assert (tmp_path / "fold-2" / "model.safetensors").stat().st_mtime_ns == fold_2_weights  # not trained again
    assert sorted(summary["folds"]) == ["1", "2", "3", "4", "5"] and summary["summary"]["folds_missing"] == []
    for fold, result in summary["folds"].items():
        assert result["validation_fold"] == int(fold)
        assert (tmp_path / f"fold-{fold}" / "model.safetensors").is_file()
    assert len(list((tmp_path / "feature_cache").iterdir())) == 1  # one cache serves every fold
    accuracies = [result["accuracy"] for result in summary["folds"].values()]
    assert summary["summary"]["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 5)
    assert json.loads((tmp_path / "cv_results.json").read_text()) == summary


@pytest.mark.slow
def test_cross_validation_resumes_an_interrupted_fold(esc50_dir, smoke_run, tmp_path):
    from esc50_hf.training.cross_validation import cross_validate

    reuse_features(smoke_run, into=tmp_path)

    setup = smoke_setup(data_dir=esc50_dir, output_dir=tmp_path, report_to="none", cv_folds=3)
    cross_validate(setup)
    fold_dir = tmp_path / "fold-3"
    first, *later = sorted(fold_dir.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    assert later, "the smoke recipe saves a checkpoint per epoch"
    for path in later:
        shutil.rmtree(path)
    (fold_dir / "metrics.json").unlink()  # as if the run had stopped after its first epoch

    summary = cross_validate(setup)
    resumed = json.loads((fold_dir / "metrics.json").read_text())
    assert resumed["resumed_from"] == first.name and resumed["epochs_in_this_process"] == 1
    assert summary["summary"]["folds_done"] == [3]


def test_each_process_gets_its_share_of_cores(monkeypatch):
    """`accelerate launch` sets OMP_NUM_THREADS=1 for one CPU process; training uses every core anyway."""
    import torch

    from esc50_hf.training.trainer import _set_torch_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
        assert _set_torch_threads(smoke_setup().training) == os.cpu_count() == torch.get_num_threads()
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(os.cpu_count() * 2))
        assert _set_torch_threads(smoke_setup().training) == 1
        assert _set_torch_threads(smoke_setup(torch_threads=3).training) == 3
    finally:
        torch.set_num_threads(before)


# --- Crash safety: what `kill -9` leaves behind never becomes a wrong model -------------------------------------


def checkpoint_steps(folder: Path) -> list[int]:
    return sorted(int(path.name.split("-")[1]) for path in folder.glob("checkpoint-*"))


@pytest.mark.slow
def test_a_new_run_refuses_a_folder_holding_another_run(esc50_dir, smoke_run, tmp_path):
    """`cp -a run-a run-e; train.py --seed 8 --output_dir run-e` used to train over run-a's folder."""
    folder = tmp_path / "run-e"
    shutil.copytree(smoke_run, folder)
    weights = (folder / "model.safetensors").read_bytes()
    completed = run_training("python", esc50_dir, folder, "--seed", "8")
    assert completed.returncode != 0
    assert "already holds a finished model of another recipe (differs in seed)" in completed.stderr
    assert "--overwrite_output_dir" in completed.stderr
    assert (folder / "model.safetensors").read_bytes() == weights
    again = run_training("python", esc50_dir, folder)  # the same recipe: still a finished model, still refused
    assert again.returncode != 0 and "already holds a finished model." in again.stderr


@pytest.fixture(scope="module")
def seed_8_run(esc50_dir, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("seed-8") / "model"
    assert_succeeded(run_training("python", esc50_dir, output_dir, "--seed", "8", "--report_to", "none"))
    return output_dir


@pytest.mark.slow
def test_resume_latest_skips_checkpoints_of_another_recipe(esc50_dir, smoke_run, seed_8_run, tmp_path):
    """run-a's newer checkpoint-26 (seed 7) sits beside the interrupted seed-8 run's checkpoint-13."""
    folder = tmp_path / "run-e"
    shutil.copytree(smoke_run, folder)
    shutil.rmtree(folder / "checkpoint-13")
    shutil.copytree(seed_8_run / "checkpoint-13", folder / "checkpoint-13")
    reuse_features(seed_8_run, into=folder)
    completed = run_training(
        "python", esc50_dir, folder, "--seed", "8", "--report_to", "none", "--resume_from_checkpoint", "latest"
    )
    assert_succeeded(completed)
    assert f"Resuming from {folder / 'checkpoint-13'}; skipped checkpoint-26: another recipe (differs in seed)" in (
        completed.stdout
    )
    assert (folder / "model.safetensors").read_bytes() == (seed_8_run / "model.safetensors").read_bytes()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["resumed_from"] == "checkpoint-13" and metrics["epochs_in_this_process"] == 1
    assert json.loads((folder / "training_config.json").read_text())["seed"] == 8
    assert {key: metrics[key] for key in ("accuracy", "f1")} == {
        key: json.loads((seed_8_run / "metrics.json").read_text())[key] for key in ("accuracy", "f1")
    }


@pytest.mark.slow
def test_a_crash_while_publishing_never_leaves_a_mixed_folder(esc50_dir, smoke_run, seed_8_run, tmp_path, monkeypatch):
    """`cp -a run-a run-f`, train `--seed 8`, kill right after the final weights are written."""
    from esc50_hf.training import trainer as training
    from esc50_hf.training.run_folder import finished_model_recipe, staging_folder

    folder = tmp_path / "run-f"
    shutil.copytree(smoke_run, folder)
    reuse_features(seed_8_run, into=folder)
    setup = smoke_setup(data_dir=esc50_dir, output_dir=folder, seed=8, report_to="none", overwrite_output_dir="true")

    def killed(*args, **kwargs):
        assert (staging_folder(folder) / "model.safetensors").is_file()  # the new model is complete, not yet in place
        raise KeyboardInterrupt("kill -9")

    monkeypatch.setattr(training, "publish_model_folder", killed)
    with pytest.raises(KeyboardInterrupt):
        training.train(setup)
    assert finished_model_recipe(folder) is None  # no finished model: neither the old one nor a mixture
    assert not (folder / "metrics.json").exists() and not (folder / "model.safetensors").exists()
    assert checkpoint_steps(folder) == [13, 26]

    monkeypatch.undo()
    training.train(setup.replace(overwrite_output_dir=False, resume_from_checkpoint="latest"))
    assert not staging_folder(folder).exists()
    recipe = finished_model_recipe(folder)
    assert recipe is not None and recipe["seed"] == 8
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["resumed_from"] == "checkpoint-26" and metrics["epochs_in_this_process"] == 0
    assert ModelCard.load(folder / "README.md").data.eval_results[0].metric_value == round(metrics["accuracy"], 4)


@pytest.mark.slow
def test_a_partial_checkpoint_falls_back_to_the_previous_complete_one(esc50_dir, smoke_run, tmp_path):
    """A kill during a save left checkpoint-26 with an empty optimizer.pt and no trainer_state.json."""
    folder = reuse_features(smoke_run, into=tmp_path / "model")
    for name in ("checkpoint-13", "checkpoint-26"):
        shutil.copytree(smoke_run / name, folder / name)
    (folder / "checkpoint-26" / "optimizer.pt").write_bytes(b"")
    (folder / "checkpoint-26" / "trainer_state.json").unlink()
    completed = run_training("python", esc50_dir, folder, "--resume_from_checkpoint", "latest")
    assert_succeeded(completed)
    assert f"Resuming from {folder / 'checkpoint-13'}; skipped checkpoint-26: incomplete: no trainer_state.json" in (
        completed.stdout
    )
    assert (folder / "model.safetensors").read_bytes() == (smoke_run / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_cross_validation_counts_only_complete_folds_of_its_recipe(esc50_dir, smoke_run, tmp_path):
    from esc50_hf.training.cross_validation import cross_validate
    from esc50_hf.training.run_folder import OutputFolderError

    reuse_features(smoke_run, into=tmp_path)

    setup = smoke_setup(data_dir=esc50_dir, output_dir=tmp_path, num_train_epochs=1, report_to="none", cv_folds=4)
    cross_validate(setup)
    fold_dir = tmp_path / "fold-4"
    weights = (fold_dir / "model.safetensors").read_bytes()
    with pytest.raises(RuntimeError, match=r"holds a finished model of another recipe \(differs in learning_rate\)"):
        cross_validate(setup.replace(learning_rate=0.01))
    (fold_dir / "metrics.json").unlink()  # an incomplete folder is not a finished fold: it resumes and completes
    cross_validate(setup)
    assert json.loads((fold_dir / "metrics.json").read_text())["epochs_in_this_process"] == 0
    assert (fold_dir / "model.safetensors").read_bytes() == weights
    (fold_dir / "metrics.json").unlink()  # checkpoints of another recipe are never resumed
    with pytest.raises(OutputFolderError, match="checkpoints of another recipe"):
        cross_validate(setup.replace(learning_rate=0.01))


@pytest.mark.slow
def test_the_saved_model_is_the_moving_average_of_the_weights(smoke_run):
    from safetensors.torch import load_file

    last_checkpoint = sorted(smoke_run.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))[-1]
    average = load_file(last_checkpoint / "ema_model.safetensors")
    last_weights = load_file(last_checkpoint / "model.safetensors")
    saved = load_file(smoke_run / "model.safetensors")
    assert set(saved) <= set(average)
    assert all(torch.equal(saved[name], average[name]) for name in saved)
    assert not all(torch.equal(saved[name], last_weights[name]) for name in saved)
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert set(metrics["last_weights"]) == {"accuracy", "f1"}  # the last weights, scored too
    assert json.loads((smoke_run / "training_config.json").read_text())["ema_decay"] > 0


def test_weight_average_is_an_exponential_moving_average_that_resumes(tmp_path):
    from transformers import TrainerControl, TrainerState

    from esc50_hf.training.callbacks import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    args, control = type("Args", (), {"output_dir": str(tmp_path), "should_save": True})(), TrainerControl()
    state = TrainerState(max_steps=10)
    with pytest.raises(ValueError, match="averages over about 100 optimizer steps, but this run has only 10"):
        WeightAverage(0.99).on_train_begin(args, state, control, model=model)
    average = WeightAverage(0.75)
    average.on_train_begin(args, state, control, model=model)
    weights = []
    for step in range(1, 4):
        with torch.no_grad():
            model[0].weight.add_(1.0)
            model[1].running_mean.add_(2.0)
        weights.append((model[0].weight.clone(), model[1].running_mean.clone()))
        state.global_step = step
        average.on_step_end(args, state, control, model=model)
    expected_weight, expected_mean = weights[0]  # the first step's weights start the average
    for weight, mean in weights[1:]:
        expected_weight, expected_mean = 0.75 * expected_weight + 0.25 * weight, 0.75 * expected_mean + 0.25 * mean
    torch.testing.assert_close(average.average.module[0].weight, expected_weight)
    torch.testing.assert_close(average.average.module[1].running_mean, expected_mean)  # batch-norm statistics too

    control.should_save = True
    average.on_epoch_end(args, state, control)  # writes the average where the Trainer's checkpoint will go
    checkpoint = tmp_path / "checkpoint-3"
    assert (checkpoint / WeightAverage.FILE_NAME).is_file()
    assert not (tmp_path / "checkpoint-2").exists()  # only where a checkpoint follows
    resumed = WeightAverage(0.75, resume_from=str(checkpoint))
    resumed.on_train_begin(args, state, control, model=model)
    torch.testing.assert_close(resumed.average.module[0].weight, expected_weight)
    state.global_step, control.should_save = 4, False
    resumed.on_step_end(args, state, control, model=model)
    assert not (tmp_path / "checkpoint-4").exists()
    state.global_step, control.should_save = 5, True
    resumed.on_step_end(args, state, control, model=model)  # averages on, does not restart from the model
    assert (tmp_path / "checkpoint-5" / WeightAverage.FILE_NAME).is_file()  # save_strategy "steps" saves here
    expected_weight = 0.75 * (0.75 * expected_weight + 0.25 * weights[-1][0]) + 0.25 * weights[-1][0]
    torch.testing.assert_close(resumed.average.module[0].weight, expected_weight)
    target = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    resumed.copy_to(target)
    torch.testing.assert_close(target[0].weight, resumed.average.module[0].weight)
    with pytest.raises(ValueError, match="decay must be in \\(0, 1\\)"):
        WeightAverage(1.0)


@pytest.mark.slow
def test_train_folds_choose_the_training_clips(esc50_dir, tmp_path):
    from esc50_hf.data.esc50 import load_esc50
    from esc50_hf.training.arguments import build_feature_extractor
    from esc50_hf.training.fold_features import prepare_features

    setup = parse_args([
        "--config", str(SMOKE), "--data_dir", str(esc50_dir), "--output_dir", str(tmp_path / "model"),
        "--train_folds", "1", "3", "--validation_fold", "2",
    ])  # fmt: skip
    features = prepare_features(setup, build_feature_extractor(setup.model))
    (train_mels, train_labels), (validation_mels, validation_labels) = features.train, features.validation
    dataset = load_esc50(esc50_dir).select_columns(["label", "fold"])
    expected_train = [row["label"] for row in dataset if row["fold"] in (1, 3)]
    assert train_labels.tolist() == expected_train and len(train_mels) == len(expected_train)
    assert validation_labels.tolist() == [row["label"] for row in dataset if row["fold"] == 2]
    assert set(features.validation_audio["fold"]) == {2} and len(validation_mels) == len(features.validation_audio)
    with pytest.raises(ValueError, match="--cv trains each fold on all the other folds"):
        from esc50_hf.training.cross_validation import cross_validate

        cross_validate(setup)


@pytest.fixture(scope="module")
def feature_file(esc50_dir, smoke_run, tmp_path_factory) -> Path:
    """`train.py --export_features` with the smoke recipe, reading the smoke run's feature cache."""
    path = tmp_path_factory.mktemp("features") / "esc50-smoke.safetensors"
    untouched = tmp_path_factory.mktemp("no-run")
    completed = run_training(
        "python", esc50_dir, untouched / "model",
        "--feature_cache_dir", str(smoke_run / "feature_cache"), "--export_features", str(path),
    )  # fmt: skip
    assert_succeeded(completed)
    assert "Wrote" in completed.stdout and not any(untouched.iterdir())  # an export trains nothing
    return path


@pytest.mark.slow
def test_a_feature_file_holds_the_recipe_features_and_what_made_them(feature_file, smoke_run, esc50_dir):
    from esc50_hf.data.esc50 import load_esc50
    from esc50_hf.data.feature_file import read_feature_file

    stored = read_feature_file(feature_file)
    cached = torch.load(next((smoke_run / "feature_cache").glob("esc50-*.pt")))
    assert stored.log_mels.dtype == torch.float16 and torch.equal(stored.log_mels, cached["features"])
    assert torch.equal(stored.labels, cached["labels"])
    rows = load_esc50(esc50_dir).select_columns(["fold", "filename"])
    assert stored.folds.tolist() == rows["fold"] and stored.metadata["clips"] == rows["filename"]
    assert stored.metadata["augmented_variants"] == 1 and stored.metadata["seed"] == 7
    assert stored.metadata["feature_extractor"]["num_mel_bins"] == 32
    assert [item["transform"] for item in stored.metadata["augmentation"]][:2] == ["GaussianNoise", "PitchShift"]


@pytest.mark.slow
def test_training_from_a_feature_file_needs_no_audio_and_learns_the_same(feature_file, smoke_run, tmp_path):
    """Same recipe, same seed: the same weights as the run that read the audio, and the score of those weights."""
    from esc50_hf.data.feature_file import read_feature_file
    from esc50_hf.evaluation.scoring import predict_feature_logits
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor
    from esc50_hf.model.modeling_esc50_cnn import Esc50CnnForAudioClassification

    output = tmp_path / "model"
    nowhere = tmp_path / "no-audio-here"
    completed = run_training("python", nowhere, output, "--features_file", str(feature_file), "--report_to", "none")
    assert_succeeded(completed)
    assert not nowhere.exists()
    assert (output / "model.safetensors").read_bytes() == (smoke_run / "model.safetensors").read_bytes()
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["scored_from"] == "features_file" and metrics["device"] == "cpu"
    assert "features_file" not in json.loads((output / "training_config.json").read_text())  # re-runs read the audio
    assert "stored float16 log-mels" in (output / "README.md").read_text()
    assert json.loads((smoke_run / "metrics.json").read_text())["scored_from"] == "audio"
    stored = read_feature_file(feature_file)
    extractor = Esc50FeatureExtractor.from_pretrained(output)
    model = Esc50CnnForAudioClassification.from_pretrained(output)
    clean = extractor.normalize(stored.log_mels[stored.folds == 5, 0].float())
    predictions = predict_feature_logits(model, clean).argmax(axis=-1)
    accuracy = float((predictions == stored.labels[stored.folds == 5].numpy()).mean())
    assert metrics["accuracy"] == pytest.approx(accuracy)


@pytest.mark.slow
def test_a_feature_file_made_for_another_recipe_is_refused(feature_file, smoke_run, tmp_path, capsys):
    from esc50_hf.training.arguments import build_feature_extractor
    from esc50_hf.training.fold_features import prepare_features

    def prepare(**options):
        setup = smoke_setup(features_file=feature_file, output_dir=tmp_path / "model", **options)
        return prepare_features(setup, build_feature_extractor(setup.model))

    assert len(prepare(train_folds="1", validation_fold=2).validation[1]) == 50  # the fixtures: 50 clips per fold
    for options, named in (
        ({"seed": 8}, r"seed: file 7, recipe 8\)\. Train with the file's settings \(--seed 7\)"),
        ({"num_mel_bins": 16}, r"feature_extractor\.num_mel_bins: file 32, recipe 16\)\. Train with"),
        ({"augmented_variants": 0}, r"augmented_variants: file 1, recipe 0;.*\(--augmented_variants 1 --seed 7\)"),
        ({"pitch_shift_semitones": 3}, r"augmentation: file \[.*\]\)\. Train with the file's settings, or"),
    ):
        with pytest.raises(ValueError, match=rf"exported for another recipe \((.*; )?{named}.*--export_features"):
            prepare(**options)
    for path, message in (
        (smoke_run / "model.safetensors", "is not a feature file of this project"),
        (tmp_path / "missing.safetensors", "no such file"),
    ):
        with pytest.raises(ValueError, match=message):
            prepare_features(
                smoke_setup(features_file=path, output_dir=tmp_path / "model"),
                build_feature_extractor(smoke_setup().model),
            )
    with pytest.raises(SystemExit):
        parse_args(["--config", str(SMOKE), "--export_features", str(tmp_path / "x.safetensors"), "--cv"])
    assert "drop --cv and --features_file" in capsys.readouterr().err


@pytest.mark.slow
def test_a_feature_file_without_a_needed_fold_is_refused(feature_file, tmp_path):
    from esc50_hf.data.feature_file import read_feature_file, write_feature_file
    from esc50_hf.training.arguments import build_feature_extractor
    from esc50_hf.training.fold_features import prepare_features

    stored, setup = read_feature_file(feature_file), smoke_setup(output_dir=tmp_path / "model")
    extractor = build_feature_extractor(setup.model)
    kept = stored.folds != 3
    variants = {key: stored.metadata[key] for key in ("augmented_variants", "augmentation", "seed")}
    clips = [name for name, keep in zip(stored.metadata["clips"], kept.tolist()) if keep]
    partial = write_feature_file(
        tmp_path / "partial.safetensors", stored.log_mels[kept], stored.labels[kept], stored.folds[kept], extractor,
        variants, clips,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"holds no clips of fold\(s\) \[3\], which this run needs"):
        prepare_features(smoke_setup(features_file=partial, output_dir=tmp_path / "model"), extractor)
    assert len(prepare_features(smoke_setup(features_file=partial, train_folds="1", output_dir=tmp_path), extractor)
               .train[1]) == 50  # fmt: skip


@pytest.mark.slow
def test_recipe_comparison_table_and_the_card_section_come_from_run_folders(smoke_run, tmp_path, capsys):
    """bench/recipes.py groups runs by name and split, averages over seeds, refreshes a results page's block (from the
    run folders or from the recipes.json they left), and the card shows the selection. The first report runs the
    script as a command; the later ones call its `main` in this process (each command would import torch again)."""
    from esc50_hf.cli import main

    from .test_readme import _recipes

    recipes = _recipes()

    names = ("stem-s0", "stem-s1", "v3/stem-s0", "gpu/stem-s0", "chosen-s0", "kd-s0")
    runs = {name: tmp_path / name for name in names}
    for folder in runs.values():
        shutil.copytree(smoke_run, folder, ignore=shutil.ignore_patterns("checkpoint-*", "feature_cache", "runs"))
    for name, seed, accuracy, validation_fold in (
        ("stem-s0", 0, 0.5, 4), ("stem-s1", 1, 0.7, 4), ("v3/stem-s0", 0, 0.9, 3), ("gpu/stem-s0", 0, 0.2, 4),
        ("kd-s0", 0, 0.8, 4),
    ):  # fmt: skip
        train_folds = [fold for fold in (1, 2, 3, 4) if fold != validation_fold]
        _edit_json(
            runs[name] / "training_config.json", seed=seed, validation_fold=validation_fold, train_folds=train_folds
        )
        _edit_json(runs[name] / "metrics.json", accuracy=accuracy, f1=accuracy - 0.1, validation_fold=validation_fold)
    _edit_json(runs["gpu/stem-s0"] / "metrics.json", hardware="Some CPU, 16 cores, NVIDIA H200")  # same seed, a GPU
    _edit_json(runs["kd-s0"] / "training_config.json", teacher_models=["runs/a", "runs/b"])  # distilled
    _edit_json(runs["chosen-s0"] / "metrics.json", train_seconds=60, first_stage_train_seconds=540)  # a second stage
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    page.write_text("# title\n<!-- recipes:start -->\nold\n<!-- recipes:end -->\nrest\n")
    script = [sys.executable, str(REPO / "bench" / "recipes.py"), *map(str, runs.values())]
    completed = subprocess.run(
        [*script, "--output-dir", str(tmp_path / "out"), "--page", str(page)], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = (tmp_path / "out" / "RECIPES.md").read_text()
    assert "| stem | 1,2,3 / 4 | CPU | 0, 1 |" in report and "| 0.6000 ± 0.1000 | 0.5000 ± 0.1000 |" in report
    assert "| stem | 1,2,3 / 4 | H200 | 0 |" in report and "| stem | 1,2,4 / 3 | CPU | 0 |" in report
    assert "| stem | CPU | 3,4 | 3 | 0.01 | 0.7500 ± 0.1500 |" in report  # the mean of the folds' means, per device
    assert "](inner_folds.png)" in report and (tmp_path / "out" / "inner_folds.png").stat().st_size > 1000
    assert not (tmp_path / "out" / "selection.png").exists()  # one plot: the inner folds' covers the split
    assert "## Fold 5, the test fold" in report and "| chosen | 1,2,3,4 / 5 | CPU | 7 |" in report
    assert "| kd (2 teachers) | 1,2,3 / 4 | CPU | 0 |" in report
    text = page.read_text()
    assert "\nold\n" not in text and text.endswith("<!-- recipes:end -->\nrest\n")
    assert "](../out/inner_folds.png)" in text  # the block links its plot, relative to the page
    assert "`chosen` trained once on folds 1,2,3,4, scored on fold 5" in text and "on CPU, 2 thread(s)" in text
    folders = script[2:]
    from_json = ["--from-json", str(tmp_path / "out" / "recipes.json"), "--page", str(page)]
    page.write_text("<!-- recipes:start -->\n<!-- recipes:end -->\n")  # the run folders' record gives the same block
    recipes.main(from_json)
    assert page.read_text() == "<!-- recipes:start -->" + text.split("<!-- recipes:start -->")[1].split("rest\n")[0]
    page.write_text("<!-- after:start -->\n<!-- after:end -->\n")
    brief = [*folders, "--output-dir", str(tmp_path / "out3"), "--page", str(page), "--page-block", "after"]
    recipes.main([*brief, "--page-brief"])
    text = page.read_text()
    assert "| stem | CPU | 3,4 | 3 |" in text and "| stem | 1,2,3 / 4 | CPU |" not in text  # its mean, not its splits
    assert "| stem | 1,2,3 / 4 | H200 | 0 |" in text  # validated on one fold only: its row
    with pytest.raises(SystemExit, match="its --cv results"):  # the README's CV line needs a CV
        recipes.main([*from_json[:2], "--print-readme-lines"])
    document = json.loads((tmp_path / "out" / "recipes.json").read_text())
    document["cross_validation"] = {"summary": {"accuracy": {"mean": 0.7, "std": 0.1}, "f1": {"mean": 0.6, "std": 0}}}
    (tmp_path / "with-cv.json").write_text(json.dumps(document))
    capsys.readouterr()
    recipes.main(["--from-json", str(tmp_path / "with-cv.json"), "--print-readme-lines"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("- Fold 5 (the test fold), the shipped recipe `chosen` trained once on folds 1,2,3,4")
    assert "accuracy **0.7000 ± 0.1000**, macro-F1 **0.6000 ± 0.0000**" in lines[1]
    assert "GFLOPs per 5-s clip, 10 min per training" in lines[2]  # its first stage's 9 min included
    assert len(lines) == 3 and all(line.endswith("([results](docs/results.md)).") for line in lines)

    _edit_json(runs["stem-s1"] / "training_config.json", learning_rate=0.5)  # another recipe under the same name
    with pytest.raises(SystemExit, match="differ in learning_rate"):
        recipes.main([*folders, "--output-dir", str(tmp_path / "out2")])

    assert main(["card", "--model", str(runs["chosen-s0"]), "--selection", str(tmp_path / "out" / "recipes.json")]) == 0
    card = ModelCard.load(runs["chosen-s0"] / "README.md").text
    assert "How the recipe was chosen (fold 5 unseen)" in card and "| 0.6000 ± 0.1000 | 0.5000 ± 0.1000 |" in card
    assert "| kd (2 teachers) | 1,2,3 / 4 |" in card
    assert "| chosen |" not in card and "{{" not in card  # the test-fold runs are not part of the selection

    one_fold = [str(runs[name]) for name in ("stem-s0", "kd-s0")]  # two candidates on one split: that split's plot
    recipes.main([*one_fold, "--output-dir", str(tmp_path / "out")])
    assert "](selection.png)" in (tmp_path / "out" / "RECIPES.md").read_text()
    assert (tmp_path / "out" / "selection.png").stat().st_size > 1000
    assert not (tmp_path / "out" / "inner_folds.png").exists()  # the earlier report's plot is not left behind
    only_test = [str(runs["chosen-s0"])]
    recipes.main([*only_test, "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "selection.png").exists()  # nothing to plot: no selection runs


def test_distillation_options_are_checked():
    bad = (["--distillation_weight", "0"], ["--distillation_weight", "1.5"], ["--distillation_temperature", "0"])
    for flags in [[*flags, "--teacher_models", "runs/teacher"] for flags in bad] + [["--distillation_weight", "0.7"]]:
        with pytest.raises(SystemExit):
            parse_args(["--config", str(SMOKE), *flags])


def test_a_recipe_without_teachers_records_no_distillation_options():
    """So its fingerprint is the one it had before distillation existed: old checkpoints still resume."""
    from esc50_hf.training.recipe import DISTILLATION_KEYS, fingerprint

    assert not set(DISTILLATION_KEYS) & set(smoke_setup().recipe())
    shipped = REPO / "models" / "esc50-mel-cnn" / "training_config.json"  # recorded before distillation existed
    assert parse_args(["--config", str(shipped)]).fingerprint() == fingerprint(json.loads(shipped.read_text()))
    taught = smoke_setup(teacher_models="runs/teacher").recipe()
    assert {key: taught[key] for key in DISTILLATION_KEYS} == {
        "teacher_models": ["runs/teacher"],
        "distillation_weight": 0.5,
        "distillation_temperature": 2.0,
    }


def test_distillation_loss_is_zero_for_the_teachers_own_predictions():
    from esc50_hf.training.distillation import distillation_loss

    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    assert distillation_loss(logits, [logits, logits], temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(torch.zeros(4, 50), [logits], temperature=2.0).item() > 0.01
    # two teachers: the target is the mean of their probabilities, not of their logits
    first, second = torch.randn(4, 50), torch.randn(4, 50)
    target = (torch.softmax(first / 2, -1) + torch.softmax(second / 2, -1)) / 2
    assert distillation_loss(torch.log(target) * 2, [first, second], temperature=2.0).item() == pytest.approx(
        0.0, abs=1e-5
    )


@pytest.mark.slow
def test_a_teacher_sees_the_features_with_its_own_normalization(smoke_run):
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor
    from esc50_hf.training.distillation import load_teachers

    student = Esc50FeatureExtractor.from_pretrained(smoke_run)
    (teacher,) = load_teachers([str(smoke_run)], 5, [1, 2, 3, 4], student)
    log_mel = torch.randn(2, student.num_mel_bins, 216) * 20 - 30
    expected = teacher.model(input_values=(log_mel - teacher.mean) / teacher.std).logits
    student.mean, student.std = -10.0, 5.0  # another normalization on the student's side
    given = teacher.logits((log_mel - student.mean) / student.std, student)
    torch.testing.assert_close(given, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_a_teacher_that_trained_on_a_fold_the_student_does_not_is_refused(smoke_run, tmp_path):
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor
    from esc50_hf.training.distillation import TeacherError, load_teachers

    shutil.copytree(smoke_run, tmp_path / "teacher-4", ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    student = Esc50FeatureExtractor.from_pretrained(smoke_run)
    pattern = str(tmp_path / "teacher-{validation_fold}")  # one teacher per fold: here fold 4's
    with pytest.raises(TeacherError, match=r"trained on folds \[1, 2, 3, 4\], which include fold\(s\) \[4\]"):
        load_teachers([pattern], 4, [1, 2, 3, 5], student)
    with pytest.raises(TeacherError, match=r"include fold\(s\) \[4\]"):  # train 1-3, validate 5: fold 4 unseen
        load_teachers([str(tmp_path / "teacher-4")], 5, [1, 2, 3], student)
    other = Esc50FeatureExtractor(**{**student.to_dict(), "num_mel_bins": 16})
    with pytest.raises(TeacherError, match="num_mel_bins: teacher 32, student 16"):
        load_teachers([str(tmp_path / "teacher-4")], 5, [1, 2, 3, 4], other)
    with pytest.raises(TeacherError, match="no model folder"):
        load_teachers([str(tmp_path / "nowhere")], 5, [1, 2, 3, 4], student)
    (tmp_path / "unfinished").mkdir()  # e.g. a run still training: checkpoints, no final model
    shutil.copy(smoke_run / "training_config.json", tmp_path / "unfinished")
    with pytest.raises(TeacherError, match="holds no finished model written by train.py"):
        load_teachers([str(tmp_path / "unfinished")], 5, [1, 2, 3, 4], student)
    with pytest.raises(TeacherError, match="no Hub model of that id could be downloaded"):  # offline in the tests
        load_teachers(["runs/nowhere"], 5, [1, 2, 3, 4], student)


@pytest.mark.slow
def test_cross_validation_checks_every_folds_teachers_before_training(esc50_dir, smoke_run, tmp_path):
    from esc50_hf.training.cross_validation import cross_validate
    from esc50_hf.training.distillation import TeacherError

    shutil.copytree(smoke_run, tmp_path / "teacher-5", ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    pattern = str(tmp_path / "teacher-{validation_fold}")  # fold 5's teacher exists, fold 1's does not
    setup = smoke_setup(data_dir=esc50_dir, output_dir=tmp_path / "cv", teacher_models=pattern).replace(cv_folds=[5, 1])
    with pytest.raises(TeacherError, match="teacher-1"):
        cross_validate(setup)
    assert not (tmp_path / "cv" / "fold-5").exists()  # fold 5 did not train before fold 1's teacher was found missing


@pytest.mark.slow
def test_a_starting_model_that_trained_on_the_validation_fold_is_refused(esc50_dir, smoke_run, tmp_path, monkeypatch):
    """`--model_name_or_path` on ESC-50: a model trained on folds 1-4 may start a run validated on fold 5, not one
    validated on fold 4 (its score would count clips the model learned), whether a folder or a Hub id (checked from the
    downloaded repository's record); under `--cv`, `{validation_fold}` names one per fold and every fold's is checked
    before the first trains. Own sounds have no ESC-50 folds: not checked."""
    from esc50_hf.training.cross_validation import cross_validate
    from esc50_hf.training.transfer import StartingModelError, with_starting_model

    for fold in (5, 1):  # both trained on folds 1-4: right for fold 5, wrong for fold 1
        shutil.copytree(smoke_run, tmp_path / f"start-{fold}", ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
    pattern = str(tmp_path / "start-{validation_fold}")
    fine = with_starting_model(smoke_setup(data_dir=esc50_dir, output_dir=tmp_path / "a", model_name_or_path=pattern))
    assert fine.model.model_name_or_path == str(tmp_path / "start-5")
    leaky = smoke_setup(data_dir=esc50_dir, output_dir=tmp_path / "b", model_name_or_path=smoke_run, validation_fold=4)
    with pytest.raises(StartingModelError, match=r"folds \[1, 2, 3, 4\], which include fold\(s\) \[4\]"):
        with_starting_model(leaky)
    downloaded = []  # the Hub (offline in the tests): the repository "downloaded" is the smoke run's folder

    def snapshot_download(name: str, **_) -> str:
        downloaded.append(name)
        return str(smoke_run)

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    from_hub = leaky.replace(model_name_or_path="someone/esc50-folds-1-4")
    with pytest.raises(StartingModelError, match=r"someone/esc50-folds-1-4 trained on ESC-50 folds \[1, 2, 3, 4\]"):
        with_starting_model(from_hub)
    assert downloaded == ["someone/esc50-folds-1-4"]
    setup = smoke_setup(data_dir=esc50_dir, output_dir=tmp_path / "cv", model_name_or_path=pattern).replace(
        cv_folds=[5, 1]
    )
    with pytest.raises(StartingModelError, match=r"start-1 trained on ESC-50 folds .* include fold\(s\) \[1\]"):
        cross_validate(setup)
    assert not (tmp_path / "cv" / "fold-5").exists()  # nothing trained before fold 1's starting model was refused
    own = parse_args(
        ["--train_dir", str(esc50_dir), "--output_dir", str(tmp_path / "c"), "--model_name_or_path", str(smoke_run)]
    )
    assert with_starting_model(own).model.model_name_or_path == str(smoke_run)


@pytest.mark.slow
def test_cross_validation_does_not_keep_a_fold_taught_by_a_retrained_teacher(esc50_dir, smoke_run, tmp_path):
    """A finished fold whose teacher was retrained since is not kept as if nothing changed: the run stops before
    training, naming the fold; with --overwrite_output_dir that fold trains again with the teacher as it is now."""
    from safetensors.torch import load_file, save_file

    from esc50_hf.training.cross_validation import cross_validate
    from esc50_hf.training.distillation import TeacherError

    teacher = tmp_path / "teacher-5"
    shutil.copytree(smoke_run, teacher, ignore=shutil.ignore_patterns("checkpoint-*", "feature_cache", "runs"))
    pattern = str(tmp_path / "teacher-{validation_fold}")
    setup = smoke_setup(data_dir=esc50_dir, output_dir=tmp_path / "cv", teacher_models=pattern).replace(cv_folds=[5])
    reuse_features(smoke_run, into=tmp_path / "cv")
    cross_validate(setup)
    metrics = tmp_path / "cv" / "fold-5" / "metrics.json"
    first_digest = json.loads(metrics.read_text())["teachers"][0]["weights_sha256"]
    cross_validate(setup)  # nothing changed: the fold is kept
    assert json.loads(metrics.read_text())["teachers"][0]["weights_sha256"] == first_digest
    weights = load_file(teacher / "model.safetensors")
    save_file(
        {name: value * 1.01 if value.is_floating_point() else value for name, value in weights.items()},
        teacher / "model.safetensors",
        {"format": "pt"},
    )
    with pytest.raises(TeacherError, match=r"fold 5 \(its finished model: .*teacher-5\)"):
        cross_validate(setup)
    cross_validate(setup.replace(overwrite_output_dir=True))
    assert json.loads(metrics.read_text())["teachers"][0]["weights_sha256"] != first_digest


@pytest.mark.slow
def test_a_student_trains_with_its_teacher(esc50_dir, tmp_path, smoke_run):
    """The smoke recipe with the smoke run as teacher: a finished model folder that names its teacher, trained
    on other losses than the same recipe without one."""
    from safetensors.torch import load_file, save_file

    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor
    from esc50_hf.training.distillation import TeacherError, check_resumed_teachers, load_teachers
    from esc50_hf.training.recipe import fingerprint

    teacher = tmp_path / "teacher"
    shutil.copytree(smoke_run, teacher, ignore=shutil.ignore_patterns("checkpoint-*", "feature_cache", "runs"))
    taught = ["--teacher_models", str(teacher), "--distillation_weight", "0.9"]
    completed = run_training("python", esc50_dir, reuse_features(smoke_run, into=tmp_path / "student"), *taught)
    assert_succeeded(completed)
    metrics = json.loads((tmp_path / "student" / "metrics.json").read_text())
    taught_by = json.loads((teacher / "training_config.json").read_text())
    digest = hashlib.sha256((teacher / "model.safetensors").read_bytes()).hexdigest()[:16]
    record = {"model": str(teacher), "recipe_fingerprint": fingerprint(taught_by), "weights_sha256": digest}
    assert metrics["teachers"] == [record]
    recipe = json.loads((tmp_path / "student" / "training_config.json").read_text())
    assert recipe["teacher_models"] == [str(teacher)] and recipe["distillation_weight"] == 0.9

    # A student checkpoint records its teachers' weights; resuming it after a teacher was retrained is refused.
    first = sorted((tmp_path / "student").glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))[0]
    extractor = Esc50FeatureExtractor.from_pretrained(teacher)
    check_resumed_teachers(first, load_teachers([str(teacher)], 5, [1, 2, 3, 4], extractor))  # the same: resumes
    assert_succeeded(
        run_training("python", esc50_dir, tmp_path / "student", *taught, "--resume_from_checkpoint", str(first))
    )
    weights = load_file(teacher / "model.safetensors")
    save_file(
        {name: value + 0.01 if value.is_floating_point() else value for name, value in weights.items()},
        teacher / "model.safetensors",
        {"format": "pt"},
    )
    with pytest.raises(TeacherError, match="other weights of .*teacher"):
        check_resumed_teachers(first, load_teachers([str(teacher)], 5, [1, 2, 3, 4], extractor))
    resumed = run_training("python", esc50_dir, tmp_path / "student", *taught, "--resume_from_checkpoint", str(first))
    assert resumed.returncode != 0 and "retrained or replaced since" in resumed.stderr
    assert first_training_loss(tmp_path / "student") != first_training_loss(smoke_run)
    evaluations = [entry for entry in log_history(tmp_path / "student") if "eval_loss" in entry]
    assert evaluations and all("eval_accuracy" in entry for entry in evaluations)


@pytest.mark.slow
def test_teachers_run_in_the_students_precision(smoke_run, tmp_path):
    """Under --bf16 accelerate autocasts the student's forward; the teachers' forward passes are autocast too."""
    from transformers import TrainingArguments

    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor
    from esc50_hf.model.modeling_esc50_cnn import Esc50CnnForAudioClassification
    from esc50_hf.training.distillation import DistillationTrainer, load_teachers

    extractor = Esc50FeatureExtractor.from_pretrained(smoke_run)
    teachers = load_teachers([str(smoke_run)], 5, [1, 2, 3, 4], extractor)
    seen = []
    teachers[0].model.classifier.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    args = TrainingArguments(output_dir=str(tmp_path), bf16=True, use_cpu=True, report_to=[])
    student = Esc50CnnForAudioClassification.from_pretrained(smoke_run).train()
    trainer = DistillationTrainer(
        model=student, args=args, processing_class=extractor, teachers=teachers, weight=0.5, temperature=2.0
    )
    batch = {"input_values": torch.randn(2, extractor.num_mel_bins, 216), "labels": torch.tensor([1, 2])}
    loss = trainer.compute_loss(student, batch)
    assert seen == [torch.bfloat16] and torch.isfinite(loss)


@pytest.mark.slow
def test_calibrate_refuses_a_run_validated_on_the_test_fold(smoke_run, esc50_dir, tmp_path):
    """`esc50-hf calibrate` fits only on folds the model is not tested on: the smoke run validated on fold 5."""
    from esc50_hf.cli import main

    target = tmp_path / "model"
    shutil.copytree(smoke_run, target)
    before = (target / "config.json").read_text()
    with pytest.raises(SystemExit, match="validated on fold 5, the test fold"):
        main(["calibrate", "--model", str(target), "--held-out", str(smoke_run), "--data-dir", str(esc50_dir)])
    assert (target / "config.json").read_text() == before


@pytest.mark.slow
def test_evaluate_scores_a_model_of_some_esc50_classes_on_those_classes(esc50_dir, tmp_path, capsys):
    """A model of some of ESC-50's classes (`--classes`) is scored on their clips; the others are not its classes."""
    from esc50_hf.cli import main
    from esc50_hf.training.trainer import train

    model = tmp_path / "some"
    argv = ["--config", str(SMOKE), "--data_dir", str(esc50_dir), "--report_to", "none", "--output_dir", str(model)]
    train(parse_args([*argv, "--ema_decay", "0", "--classes", "rain", "dog"]))
    assert main(["evaluate", "--model", str(model), "--data-dir", str(esc50_dir), "--fold", "5"]) == 0
    assert "fold 5: 2 clips of the model's 2 classes" in capsys.readouterr().out


def test_a_resumed_runs_training_time_is_scaled_to_all_its_epochs():
    """Only the last process's seconds are recorded; the cost of the whole run is estimated from its share of epochs."""
    from esc50_hf.training.model_folder import training_seconds

    resumed = {"train_seconds": 100.0, "epochs": 200, "epochs_in_this_process": 50, "resumed_from": "checkpoint-6"}
    assert training_seconds(resumed) == 400.0
    assert training_seconds({**resumed, "resumed_from": None, "epochs_in_this_process": 200}) == 100.0
