"""bench/own_classes.py end to end on the fixture clips: the splits, the select / compare / report stages and the
report's fields (the real numbers come from the real runs; this checks the machinery that produces them)."""

import json
import shutil
from pathlib import Path

import pytest

from esc50_hf.model.labels import ESC50_LABELS

from .conftest import write_fake_esc50

pytestmark = pytest.mark.slow


def test_the_five_splits_are_disjoint_and_cover_every_class():
    from bench import own_classes

    held_out = [own_classes.new_classes(split) for split in range(own_classes.NUM_SPLITS)]
    assert all(len(classes) == 10 for classes in held_out)
    assert sorted(sum(held_out, [])) == sorted(ESC50_LABELS)
    assert set(own_classes.known_classes(0)).isdisjoint(held_out[0]) and len(own_classes.known_classes(0)) == 40


def test_stages_write_a_report_of_every_method_and_k(saved_model_dir, tmp_path, monkeypatch):
    from bench import own_classes

    data = write_fake_esc50(tmp_path / "esc50" / "ESC-50", clips_per_class_per_fold=2)
    runs = tmp_path / "runs"
    shutil.copytree(saved_model_dir, runs / "base-s0")  # a stand-in base model of split 0
    monkeypatch.setattr(own_classes, "CLIPS_PER_CLASS", (2,))  # one k: every k runs the same code
    monkeypatch.setattr(own_classes, "SELECTION_CLIPS", 2)
    monkeypatch.setattr(own_classes, "SEEDS", (0,))
    monkeypatch.setattr(own_classes, "SCRATCH_EPOCHS", 2)
    monkeypatch.setattr(
        own_classes, "CANDIDATES", {"as-configured": [], "head-only": own_classes.CANDIDATES["head-only"]}
    )
    common = ["--data-dir", str(data), "--runs", str(runs), "--splits", "0", "--torch-threads", "1"]
    own_classes.main(["select", *common])
    own_classes.main(["compare", *common])
    own_classes.main(["report", "--runs", str(runs), "--output-dir", str(tmp_path / "report")])
    report = json.loads((tmp_path / "report" / "own_classes.json").read_text())
    for method in ("transfer", "head_only", "scratch"):
        assert set(report["results"][method]) == {"2"}
        row = report["results"][method]["2"]
        assert 0.0 <= row["accuracy_mean"] <= 1.0 and row["accuracy_std"] >= 0 and row["seconds_mean"] > 0
        assert row["runs"] == 1 and row["splits"] == [0]
    assert set(report["selection"]) == {"as-configured", "head-only"}
    record = json.loads((runs / "fine-tuning" / "compare-s0-k2-seed0-transfer" / "result.json").read_text())
    assert record["num_clips"] == 20 and record["num_train_clips"] == 20  # all fold-5 clips of the 10 new classes
    config = json.loads((runs / "fine-tuning" / "compare-s0-k2-seed0-transfer" / "model" / "config.json").read_text())
    assert sorted(config["id2label"].values()) == sorted(own_classes.new_classes(0))
    markdown = (tmp_path / "report" / "OWN_CLASSES.md").read_text()
    assert "| transfer (configs/own-classes.yaml) |" in markdown and "fold-4 accuracy" in markdown
    assert not Path(runs / "fine-tuning" / "compare-s0-k2-seed0-transfer" / "model" / "feature_cache").exists()


def test_the_pair_stage_trains_two_two_stage_networks_per_split_and_merges_them_once(tmp_path, monkeypatch):
    """`pair`: per split, a base model per seed of `PAIR_SEEDS`, a second stage from each, the two merged in float16
    on the 40 known classes, by two processes (`--seeds`: the second to finish merges); run again, it keeps what is
    done."""
    from bench import own_classes

    smoke = str(Path(own_classes.ROOT) / "configs" / "smoke.yaml")
    data = write_fake_esc50(tmp_path / "esc50" / "ESC-50", clips_per_class_per_fold=1)
    runs = tmp_path / "runs"
    monkeypatch.setattr(own_classes, "BASE_RECIPE", ["--config", smoke, "--ema_decay", "0"])
    monkeypatch.setattr(own_classes, "PAIR_STAGE2", ["--config", smoke, "--ema_decay", "0", "--num_train_epochs", "1"])
    command = ["pair", "--data-dir", str(data), "--runs", str(runs), "--splits", "1", "--torch-threads", "1"]
    own_classes.main([*command, "--seeds", "3"])  # one member: no pair yet
    pair = runs / "pair-s1"
    assert (runs / "ft-s1-seed3" / "model.safetensors").is_file() and not pair.exists()
    assert not (runs / "base-s1").exists()  # seed 0's member is the other process's
    own_classes.main([*command, "--seeds", "0"])
    config = json.loads((pair / "config.json").read_text())
    assert config["num_networks"] == 2 and list(config["id2label"].values()) == own_classes.known_classes(1)
    metrics = json.loads((pair / "metrics.json").read_text())
    assert metrics["num_clips"] == 40 and metrics["weights_dtype"] == "float16"  # the known classes' fold-5 clips
    members = [Path(member["path"]).name for member in metrics["merged_from"]]
    assert members == ["ft-s1-seed0", "ft-s1-seed3"] and metrics["first_stage_train_seconds"] > 0
    assert json.loads((runs / "base-s1-seed3" / "training_config.json").read_text())["seed"] == 3
    card = (runs / "ft-s1-seed3" / "README.md").read_text()  # a second stage of the same 40 classes
    assert "of these classes, its classifier head kept" in card and "new classifier head" not in card
    written = {path: path.stat().st_mtime_ns for path in runs.rglob("model.safetensors")}
    own_classes.main(command)
    assert {path: path.stat().st_mtime_ns for path in runs.rglob("model.safetensors")} == written
