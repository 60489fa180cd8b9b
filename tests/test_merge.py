"""`esc50-hf merge`: two trained models answering as one (the mean of their probabilities), on every path."""

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from esc50_hf import Esc50CnnForAudioClassification, Esc50FeatureExtractor, audio_pipeline
from esc50_hf.cli import main
from esc50_hf.errors import OutputExistsError
from esc50_hf.inference import PROBABILITIES_NAME, SAMPLING_RATE_METADATA_KEY, WAVEFORM_FILE, WAVEFORM_INPUT_NAME
from esc50_hf.training.arguments import parse_args
from esc50_hf.training.merge import MergeError, merge_models
from esc50_hf.training.trainer import train

from .conftest import synthetic_clip

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"

pytestmark = pytest.mark.slow  # every test here reads trainings of the smoke recipe


@pytest.fixture(scope="module")
def train_smoke(esc50_dir, tmp_path_factory) -> Callable[..., Path]:
    """`train_smoke(output, *flags)` trains the smoke recipe on the fixtures into `output`. This module's trainings
    share one feature cache (keyed by the clips, features, augmentation and seed): a seed's log-mels are computed
    once, not once per training."""
    cache = tmp_path_factory.mktemp("feature-cache")

    def train_into(output: Path, *flags: str) -> Path:
        argv = ["--config", str(SMOKE), "--data_dir", str(esc50_dir), "--report_to", "none", "--output_dir"]
        argv += [str(output), "--feature_cache_dir", str(cache)]
        train(parse_args([*argv, *flags]))
        return output

    return train_into


@pytest.fixture(scope="module")
def members(train_smoke, tmp_path_factory) -> list[Path]:
    """Two trainings of the smoke recipe (seeds 1 and 2): folds 1-4, fold 5 validates."""
    root = tmp_path_factory.mktemp("members")
    return [train_smoke(root / f"seed-{seed}", "--seed", str(seed)) for seed in (1, 2)]


@pytest.fixture(scope="module")
def pair(members, esc50_dir, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("pair") / "model"
    assert main(["merge", *map(str, members), "--output", str(output), "--data-dir", str(esc50_dir)]) == 0
    return output


def _raw_probabilities(path: Path, features: torch.Tensor) -> torch.Tensor:
    model = Esc50CnnForAudioClassification.from_pretrained(path).eval()
    model.config.calibration_temperature = 1.0
    with torch.no_grad():
        return model(features).logits.softmax(-1)


def test_the_merged_model_answers_the_mean_of_its_networks(members, pair, capsys):
    config = json.loads((pair / "config.json").read_text())
    assert config["num_networks"] == 2 and config["calibration"]["fitted_on"].startswith("fold 5")
    features = torch.randn(3, 32, 216)
    expected = (_raw_probabilities(members[0], features) + _raw_probabilities(members[1], features)) / 2
    torch.testing.assert_close(_raw_probabilities(pair, features), expected, atol=1e-5, rtol=1e-4)
    metrics = json.loads((pair / "metrics.json").read_text())
    assert [member["seed"] for member in metrics["merged_from"]] == [1, 2]
    card = (pair / "README.md").read_text()
    assert "2 networks" in card and "esc50-hf merge" in card and not (pair / "training_curves.png").exists()
    # the pipeline answers with the merged model's calibrated probability
    extractor = Esc50FeatureExtractor.from_pretrained(pair)
    clip = synthetic_clip(3, seed=0, rate=extractor.sampling_rate)
    (answer,) = audio_pipeline(pair)({"raw": clip, "sampling_rate": extractor.sampling_rate}, top_k=1)
    model = Esc50CnnForAudioClassification.from_pretrained(pair).eval()
    with torch.no_grad():
        probabilities = model(**extractor(clip, return_tensors="pt")).logits.softmax(-1)[0]
    assert answer["label"] == model.config.id2label[int(probabilities.argmax())]
    assert abs(answer["score"] - float(probabilities.max())) < 1e-4


def test_float16_halves_the_weights_and_loads_as_float32(members, pair, esc50_dir, tmp_path):
    half = tmp_path / "half"
    merge_models(members, half, data_dir=str(esc50_dir), float16=True)
    with safe_open(half / "model.safetensors", framework="pt") as weights:
        dtypes = {weights.get_slice(name).get_dtype() for name in weights.keys()}  # noqa: SIM118 (not a dict)
    assert "F16" in dtypes and "F32" not in dtypes
    ratio = (half / "model.safetensors").stat().st_size / (pair / "model.safetensors").stat().st_size
    assert 0.45 < ratio < 0.6  # float16 values; the header and the int64 batch counters stay
    model = Esc50CnnForAudioClassification.from_pretrained(half)
    assert model.dtype == torch.float32
    features = torch.randn(4, 32, 216)
    difference = (_raw_probabilities(half, features) - _raw_probabilities(pair, features)).abs().max()
    assert difference < 1e-2


def _variant(member: Path, folder: Path, file: str, **changes) -> Path:
    """A copy of `member` whose `file` (a JSON object) has `changes`: a model that differs in just that."""
    shutil.copytree(member, folder)
    values = json.loads((folder / file).read_text())
    (folder / file).write_text(json.dumps({**values, **changes}))
    return folder


@pytest.mark.parametrize(
    ("file", "changes", "message"),
    [
        ("config.json", {"id2label": {"0": "x", "1": "y"}}, r"labels \(id2label\)"),
        ("config.json", {"stem_channels": 12}, r"stem_channels \(8 vs 12\)"),
        ("config.json", {"num_networks": 2}, "already a merged model of 2 networks"),
        ("preprocessor_config.json", {"n_fft": 512}, r"feature extractor n_fft \(1024 vs 512\)"),
        ("training_config.json", {"learning_rate": 0.5}, r"learning_rate \([\d.e-]+ vs 0.5\)"),
        ("training_config.json", {"train_dir": "my-sounds"}, "the user's own sounds"),
    ],
)
def test_models_that_cannot_answer_together_are_refused_naming_the_difference(
    members, esc50_dir, tmp_path, file, changes, message
):
    other = _variant(members[1], tmp_path / "other", file, **changes)
    with pytest.raises(MergeError, match=message):
        merge_models([members[0], other], tmp_path / "out", data_dir=str(esc50_dir))


def test_merging_refuses_other_folds_one_model_twice_and_a_taken_folder(members, esc50_dir, tmp_path):
    fold_4 = _variant(members[1], tmp_path / "fold-4", "training_config.json", validation_fold=4)
    with pytest.raises(MergeError, match=r"validation_fold \(5 vs 4\); training folds"):
        merge_models([members[0], fold_4], tmp_path / "out", data_dir=str(esc50_dir))
    with pytest.raises(MergeError, match="at least two"):
        merge_models([members[0]], tmp_path / "out", data_dir=str(esc50_dir))
    twin = shutil.copytree(members[0], tmp_path / "twin")
    with pytest.raises(MergeError, match="the same weights as"):
        merge_models([members[0], twin], tmp_path / "out", data_dir=str(esc50_dir))
    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputExistsError, match="already exists"):
        merge_models(members, tmp_path / "taken", data_dir=str(esc50_dir))


def test_a_merge_that_fails_midway_leaves_no_folder(members, esc50_dir, tmp_path, monkeypatch):
    import esc50_hf.evaluation.scoring as scoring

    def broken(*args, **kwargs):
        assert (tmp_path / "out" / "model.safetensors").is_file()  # the weights were written before the failure
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(scoring, "labelled_logits", broken)
    with pytest.raises(RuntimeError, match="scoring failed"):
        merge_models(members, tmp_path / "out", data_dir=str(esc50_dir))
    assert not (tmp_path / "out").exists()


def test_loading_refuses_weights_of_another_number_of_networks(members, pair):
    with pytest.raises(ValueError, match="not those of 2 network"):
        Esc50CnnForAudioClassification.from_pretrained(members[0], num_networks=2)
    with pytest.raises(ValueError, match="not those of 1 network"):
        Esc50CnnForAudioClassification.from_pretrained(pair, num_networks=1)


def test_onnx_graphs_of_a_merged_model_match_it(pair, tmp_path):
    import onnxruntime

    from esc50_hf.inference import SoundClassifier

    folder = shutil.copytree(pair, tmp_path / "model")
    assert main(["export-onnx", "--model", str(folder)]) == 0  # the feature graph: SoundClassifier's onnx backend
    assert main(["export-onnx", "--model", str(folder), "--waveform"]) == 0
    session = onnxruntime.InferenceSession(str(folder / WAVEFORM_FILE), providers=["CPUExecutionProvider"])
    rate = int(session.get_modelmeta().custom_metadata_map[SAMPLING_RATE_METADATA_KEY])
    waveform = synthetic_clip(5, seed=1, rate=rate)[None, :].astype(np.float32)
    probabilities = session.run([PROBABILITIES_NAME], {WAVEFORM_INPUT_NAME: waveform})[0]
    expected = audio_pipeline(folder)({"raw": waveform[0], "sampling_rate": rate}, top_k=50)
    best = max(expected, key=lambda item: item["score"])
    labels = json.loads((folder / "config.json").read_text())["id2label"]
    assert labels[str(int(probabilities.argmax()))] == best["label"]
    assert abs(float(probabilities.max()) - best["score"]) < 1e-3
    torch_answer = SoundClassifier(folder).predict_waveform(waveform[0], top_k=1)
    onnx_answer = SoundClassifier(folder, backend="onnx").predict_waveform(waveform[0], top_k=1)
    assert onnx_answer.labels[0].label == torch_answer.labels[0].label == best["label"]
    assert abs(onnx_answer.labels[0].score - torch_answer.labels[0].score) < 1e-3
    assert abs(onnx_answer.unknown_score - torch_answer.unknown_score) < 1e-2


def test_a_merged_model_learns_new_labels_with_a_head_per_network(pair):
    from esc50_hf.training.arguments import ModelArguments
    from esc50_hf.training.transfer import starting_model, transfer_optimizer

    model, _ = starting_model(ModelArguments(model_name_or_path=str(pair)), ["hammer", "drill", "saw"])
    assert [network.classifier.out_features for network in model.networks()] == [3, 3]
    optimizer = transfer_optimizer(model, learning_rate=1e-3, body_scale=0.0, weight_decay=0.01)
    trained = {id(parameter) for group in optimizer.param_groups for parameter in group["params"]}
    heads = {id(parameter) for network in model.networks() for parameter in network.classifier.parameters()}
    assert trained == heads  # a linear probe trains both heads and nothing else


def test_a_single_training_is_not_a_repeated_run_of_a_merged_model(members, pair):
    from esc50_hf.training.reports import CompanionResultsError, attach_companion_results

    with pytest.raises(CompanionResultsError, match="of 1 network"):
        attach_companion_results(pair, repeated_runs=[members[0]])


def test_trainings_of_some_esc50_classes_merge_and_score_on_those_classes(train_smoke, esc50_dir, tmp_path):
    classes = ["siren", "dog", "rain"]  # not ESC-50's order: the merged model keeps the members' label order
    members = [
        train_smoke(tmp_path / f"seed-{seed}", "--seed", str(seed), "--ema_decay", "0", "--classes", *classes)
        for seed in (1, 2)
    ]
    metrics = merge_models(members, tmp_path / "pair", data_dir=str(esc50_dir))
    assert metrics["num_clips"] == json.loads((members[0] / "metrics.json").read_text())["num_clips"] == 3
    config = json.loads((tmp_path / "pair" / "config.json").read_text())
    assert list(config["id2label"].values()) == classes and config["num_networks"] == 2
    assert "siren, dog, rain" in (tmp_path / "pair" / "README.md").read_text()  # the card of a model of some classes


def test_a_merged_model_is_calibrated_on_merged_runs_only(members, pair, esc50_dir, tmp_path):
    """Held-out predictions of one network are not those of the pair: `esc50-hf calibrate` refuses them."""
    target = tmp_path / "model"
    shutil.copytree(pair, target)
    before = (target / "config.json").read_text()
    held_out = ["--held-out", str(members[0]), "--data-dir", str(esc50_dir), "--test-fold", "4"]
    with pytest.raises(SystemExit, match=r"of 1 network\(s\), the model to calibrate of 2"):
        main(["calibrate", "--model", str(target), *held_out])
    assert (target / "config.json").read_text() == before


def test_second_stages_keep_their_first_stage_recipe_and_merge_as_the_shipped_pair(
    members, train_smoke, esc50_dir, tmp_path
):
    """A second stage (`--model_name_or_path` a first-stage folder) keeps that folder's recipe and training time
    beside its own, so its card can say how to make both and what it cost; merged, the pair keeps them (a first stage
    two members share counted once), and bench/recipes.py reads it as one run of seeds "1+2"."""
    from esc50_hf.training.reports import CompanionResultsError, attach_companion_results

    from .test_readme import _recipes

    def second_stage(seed: int, first: Path) -> Path:
        return train_smoke(tmp_path / f"stage2-{seed}", "--model_name_or_path", str(first), "--seed", str(seed))

    second = [second_stage(seed, first) for seed, first in zip((1, 2), members, strict=True)]
    first_seconds = [json.loads((first / "metrics.json").read_text())["train_seconds"] for first in members]
    for stage2, first, seconds in zip(second, members, first_seconds, strict=True):
        kept = json.loads((stage2 / "starting_model_recipe.json").read_text())
        assert kept == json.loads((first / "training_config.json").read_text())
        assert json.loads((stage2 / "metrics.json").read_text())["first_stage_train_seconds"] == seconds
        assert "--config starting_model_recipe.json" in (stage2 / "README.md").read_text()
    assert not (members[0] / "starting_model_recipe.json").exists()  # trained from scratch: nothing to keep

    pair = tmp_path / "pair"
    merge_models(second, pair, data_dir=str(esc50_dir))
    metrics = json.loads((pair / "metrics.json").read_text())
    assert metrics["first_stage_train_seconds"] == round(sum(first_seconds), 1)
    assert (pair / "starting_model_recipe.json").read_text() == (second[0] / "starting_model_recipe.json").read_text()
    card = (pair / "README.md").read_text()
    assert "--model_name_or_path <first stage>" in card and "esc50-hf merge <their folders>" in card
    assert "s of\ntraining the first stages it started from" in card
    run = _recipes().read_run(pair)
    assert run["seed"] == "1+2" and run["form"] == "2 networks"
    assert run["train_seconds"] == metrics["train_seconds"] + metrics["first_stage_train_seconds"]

    shared = tmp_path / "shared"  # two second stages of one first stage: its time once, and another form
    merge_models([second[0], second_stage(3, members[0])], shared, data_dir=str(esc50_dir))
    assert json.loads((shared / "metrics.json").read_text())["first_stage_train_seconds"] == first_seconds[0]
    with pytest.raises(CompanionResultsError, match="of 2 networks from one first stage, .* of 2 networks:"):
        attach_companion_results(pair, repeated_runs=[shared])


def test_keep_existing_keeps_a_finished_merge_of_the_same_models_only(members, pair, esc50_dir):
    before = (pair / "model.safetensors").stat().st_mtime_ns
    kept = merge_models(members, pair, data_dir=str(esc50_dir), keep_existing=True)
    assert kept == json.loads((pair / "metrics.json").read_text())
    assert (pair / "model.safetensors").stat().st_mtime_ns == before  # not merged again
    for others, float16 in ((members[::-1], False), (members, True)):  # another order, another storage: refused
        with pytest.raises(OutputExistsError):
            merge_models(others, pair, data_dir=str(esc50_dir), float16=float16, keep_existing=True)
