"""The training configuration: HfArgumentParser over the project's dataclasses, the shipped recipe as defaults,
clear errors for unknown flags and invalid augmentations, and the recipe fingerprint."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from esc50_hf.data.augmentation import Mixup, PitchShift, TimeMasking, TimeRoll
from esc50_hf.training.arguments import AugmentationArguments, TrainingSetup, parse_args
from esc50_hf.training.recipe import fingerprint, is_run_setting, translate_legacy_recipe

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"
SHIPPED = REPO / "models" / "esc50-mel-cnn"


@pytest.mark.slow
def test_help_lists_every_option():
    completed = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--help"], capture_output=True, text=True, check=True, timeout=120
    )
    for flag in ("--gradient_accumulation_steps", "--max_grad_norm", "--torch_compile", "--dataloader_num_workers",
                 "--num_mel_bins", "--mixup_alpha", "--overwrite_output_dir", "--config", "--cv"):  # fmt: skip
        assert flag in completed.stdout, flag


def test_yaml_gives_defaults_and_flags_override_them(tmp_path):
    config = tmp_path / "recipe.yaml"
    config.write_text(SMOKE.read_text() + "learning_rate: 1e-3\n")  # YAML 1.1 reads 1e-3 as text
    setup = parse_args(["--config", str(config), "--num_train_epochs", "3", "--block_channels", "4", "8",
                        "--bf16", "true", "--gradient_accumulation_steps", "2", "--f_max", "8000"])  # fmt: skip
    assert setup.training.learning_rate == 0.001 and isinstance(setup.training.learning_rate, float)
    assert (setup.training.num_train_epochs, setup.model.block_channels, setup.training.bf16) == (3.0, [4, 8], True)
    assert (setup.training.gradient_accumulation_steps, setup.model.f_max) == (2, 8000.0)
    assert (setup.model.num_mel_bins, setup.training.seed) == (32, 7)  # from the file
    assert setup.training.eval_strategy == "epoch" and setup.training.remove_unused_columns is False


def test_the_defaults_are_the_shipped_recipe():
    """configs/esc50.yaml names no hyper-parameter: the dataclass defaults must reproduce the shipped run exactly (its
    first stage, when the shipped model is a second stage trained from it)."""
    first_stage = SHIPPED / "starting_model_recipe.json"
    recipe_file = first_stage if first_stage.is_file() else SHIPPED / "training_config.json"
    shipped = translate_legacy_recipe(json.loads(recipe_file.read_text()))
    setup = parse_args(["--config", str(REPO / "configs" / "esc50.yaml")])
    recipe = setup.recipe()
    compared = sorted(key for key in set(shipped) | set(recipe) if not is_run_setting(key))
    assert len(compared) == 44  # all but paths, workers, threads, logging and publishing
    assert {"stem_channels", "ema_decay", "train_folds", "seed"} <= set(compared)
    for key in compared:
        ours = recipe[key] if key in recipe else getattr(setup.training, key)
        assert key in shipped and ours == shipped[key], key
    # Constants of the old code that are options now.
    augmentation = setup.augmentation
    assert (augmentation.gaussian_noise_min_amplitude, augmentation.gaussian_noise_max_amplitude) == (1e-3, 1.5e-2)
    assert augmentation.time_shift_max_fraction == 0.5


def test_the_stage2_config_is_the_shipped_second_stage():
    """configs/esc50-stage2.yaml, from a first-stage model, reproduces the shipped model's own recipe (the shipped
    model is a second stage; the test above checks its first stage against the defaults)."""
    shipped = json.loads((SHIPPED / "training_config.json").read_text())
    start = ["--model_name_or_path", shipped["model_name_or_path"]]
    setup = parse_args(["--config", str(REPO / "configs" / "esc50-stage2.yaml"), *start])
    recipe = setup.recipe()
    compared = sorted(key for key in set(shipped) | set(recipe) if not is_run_setting(key))
    assert {"num_train_epochs", "learning_rate", "codec_p", "model_name_or_path"} <= set(compared)
    for key in compared:
        ours = recipe[key] if key in recipe else getattr(setup.training, key)
        assert key in shipped and ours == shipped[key], key


def test_a_saved_recipe_reads_back_to_the_same_run(tmp_path):
    setup = parse_args(["--config", str(SMOKE), "--gradient_accumulation_steps", "3", "--max_grad_norm", "0.5"])
    saved = tmp_path / "training_config.json"
    saved.write_text(json.dumps(setup.recipe()))
    again = parse_args(["--config", str(saved)])
    assert again.recipe() == setup.recipe()
    assert (again.training.gradient_accumulation_steps, again.training.max_grad_norm) == (3, 0.5)
    # What the machine decided, secrets and how this invocation started are not part of the recipe.
    assert not {"use_cpu", "ddp_backend", "accelerator_config", "hub_token", "push_to_hub"} & set(setup.recipe())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--learning_rat", "0.1"], "unrecognized arguments: --learning_rat"),  # no silent abbreviation either
        (["--n_mels", "32"], "unrecognized arguments: --n_mels"),
        (["--seed"], "--seed: expected one argument"),
        (["--num_train_epochs", "many"], "invalid float value: 'many'"),
    ],
)
def test_unknown_or_malformed_flags_are_errors_naming_them(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--config", str(SMOKE), *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_config_key_is_an_error_naming_it(tmp_path, capsys):
    config = tmp_path / "recipe.yaml"
    config.write_text("learning_rate: 0.01\nmixup_alpah: 0.2\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(config)])
    assert "unknown key(s) mixup_alpah" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--mixup_alpha", "0"], "--mixup_alpha: Mixup alpha must be > 0, got 0.0"),
        (["--pitch_shift_p", "1.5"], "--pitch_shift_p: PitchShift p must be a probability in [0, 1], got 1.5"),
        (["--time_stretch_range", "1.2"], "--time_stretch_range: TimeStretch rate_range must be in [0, 0.9]"),
        (["--gaussian_noise_max_amplitude", "1e-4"], "--gaussian_noise_max_amplitude: GaussianNoise max_amplitude"),
        (["--time_mask_width", "-1"], "--time_mask_width: TimeMasking max_width must be >= 0"),
        (["--augmented_variants", "-1"], "--augmented_variants must be 0 or more"),
        (["--validation_fold", "6"], "--validation_fold must name folds among [1, 2, 3, 4, 5]"),
        (["--train_folds", "1", "7"], "--train_folds must name folds among [1, 2, 3, 4, 5]"),
        (
            ["--train_folds", "4", "5"],
            "--train_folds: train_folds must be one or more folds among (1, 2, 3, 4, 5) other",
        ),
        (["--ema_decay", "1"], "--ema_decay must be in [0, 1) (0: no averaging), got 1.0"),
        (["--load_best_model_at_end", "true"], "cannot be combined with --load_best_model_at_end or --save_strategy"),
        (["--cv", "--train_folds", "1", "2", "3"], "--cv trains each fold on all the other folds: leave --train_folds"),
    ],
)
def test_invalid_augmentation_and_data_options_fail_at_once_naming_the_flag(arguments, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--config", str(SMOKE), *arguments])
    assert message in capsys.readouterr().err


def test_each_transform_validates_its_parameters():
    with pytest.raises(ValueError, match=r"Mixup alpha must be > 0, got -1"):
        Mixup(alpha=-1)
    with pytest.raises(ValueError, match=r"PitchShift semitones must be in \[0, 24\], got 30"):
        PitchShift(semitones=30)
    with pytest.raises(ValueError, match=r"TimeRoll p must be a probability"):
        TimeRoll(p=-0.1)
    with pytest.raises(ValueError, match=r"TimeMasking num_masks must be >= 0"):
        TimeMasking(num_masks=-2)


def test_time_masks_of_width_zero_mask_nothing():
    import torch

    torch.manual_seed(0)
    features = torch.ones(8, 50)
    assert torch.equal(TimeMasking(num_masks=5, max_width=0)(features.clone()), features)


def test_only_waveform_parameters_decide_the_cached_variants():
    """Spectrogram and mixup settings run on the fly: changing them must not rebuild the feature cache."""
    reference = AugmentationArguments().waveform().parameters()
    on_the_fly = AugmentationArguments(mixup_p=0.1, mixup_alpha=1.0, time_roll_p=0.0, freq_masks=0, time_masks=5)
    assert on_the_fly.waveform().parameters() == reference
    for change in ({"gaussian_noise_max_amplitude": 0.05}, {"time_shift_max_fraction": 0.25}, {"gain_db": 3.0}):
        assert AugmentationArguments(**change).waveform().parameters() != reference, change


def test_feature_cache_is_reused_across_spectrogram_settings_only(esc50_dir, tmp_path):
    from esc50_hf.data.esc50 import load_esc50
    from esc50_hf.data.features import cached_log_mels
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor

    clips = load_esc50(esc50_dir).select(range(3))
    extractor = Esc50FeatureExtractor(num_mel_bins=16)

    def cache_files(**augmentation) -> set[str]:
        cached_log_mels(clips, extractor, tmp_path, AugmentationArguments(**augmentation).waveform(), 1, 0, 0)
        return {path.name for path in tmp_path.iterdir()}

    first = cache_files()
    assert len(first) == 1
    assert cache_files(mixup_p=0.0, time_roll_p=1.0, freq_mask_width=2) == first
    assert len(cache_files(gaussian_noise_p=1.0)) == 2


@pytest.mark.parametrize("failure", ["ENOSPC", "torch's wrapper", "not the disk"])
def test_a_full_disk_while_writing_the_feature_cache_is_one_clear_line_and_leaves_no_tmp(
    esc50_dir, tmp_path, monkeypatch, failure
):
    """The cache writer fails half-way: OSError(ENOSPC), or the RuntimeError torch raises for it (with the disk
    full), gives `FeatureWriteError` (a user error: one line naming the folder option) and no `.tmp` file; a
    failure that is not the disk's is raised as it is, also without a `.tmp` file."""
    import errno
    import shutil
    from collections import namedtuple

    import torch

    from esc50_hf.data import features
    from esc50_hf.data.esc50 import load_esc50
    from esc50_hf.errors import USER_ERRORS
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor

    def half_written(obj, path):
        Path(path).write_bytes(bytes(1000))
        if failure == "ENOSPC":
            raise OSError(errno.ENOSPC, "No space left on device")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", half_written)
    if failure == "torch's wrapper":
        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 4096))
    clips = load_esc50(esc50_dir).select(range(3))
    extractor = Esc50FeatureExtractor(num_mel_bins=16)
    if failure == "not the disk":
        with pytest.raises(RuntimeError, match="enforce fail"):
            features.cached_log_mels(clips, extractor, tmp_path / "cache", workers=0)
    else:
        with pytest.raises(features.FeatureWriteError) as raised:
            features.cached_log_mels(clips, extractor, tmp_path / "cache", workers=0)
        message = str(raised.value)
        assert isinstance(raised.value, USER_ERRORS) and "\n" not in message
        assert message.startswith(f"Cannot write {tmp_path / 'cache'}/features-") and "the disk is full" in message
        assert "--feature_cache_dir" in message
    assert [path.name for path in (tmp_path / "cache").iterdir()] == []


def test_a_full_disk_while_writing_a_feature_file_names_export_features_and_leaves_no_tmp(tmp_path, monkeypatch):
    import errno

    import torch

    from esc50_hf.data import feature_file
    from esc50_hf.data.features import FeatureWriteError, variant_settings
    from esc50_hf.model.feature_extraction_esc50 import Esc50FeatureExtractor

    def half_written(tensors, path, metadata=None):
        Path(path).write_bytes(bytes(1000))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(feature_file, "save_file", half_written)
    with pytest.raises(FeatureWriteError, match=r"the disk is full .* give --export_features a path on another disk"):
        feature_file.write_feature_file(
            tmp_path / "features.safetensors", torch.zeros(2, 1, 4, 8), torch.zeros(2), torch.ones(2),
            Esc50FeatureExtractor(num_mel_bins=4), variant_settings(None, 0, 0), ["a.wav", "b.wav"],
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_fingerprint_covers_the_recipe_and_the_seed_not_where_or_how_it_runs():
    setup = parse_args(["--config", str(SMOKE)])
    same = setup.replace(output_dir="elsewhere", data_dir="/data", torch_threads=1, report_to="none",
                         logging_steps=50, feature_workers=4, save_total_limit=5, dataloader_num_workers=2)  # fmt: skip
    assert same.fingerprint() == setup.fingerprint()
    for change in ({"seed": 8}, {"learning_rate": 0.01}, {"mixup_p": 0.1}, {"gradient_accumulation_steps": 2}):
        assert setup.replace(**change).fingerprint() != setup.fingerprint(), change
    assert fingerprint({"num_train_epochs": 2}) == fingerprint({"num_train_epochs": 2.0})  # YAML int vs flag float


def test_replace_rejects_unknown_options():
    with pytest.raises(ValueError, match="Unknown training option"):
        parse_args(["--config", str(SMOKE)]).replace(learning_rat=0.1)
    assert isinstance(parse_args(["--config", str(SMOKE)]).replace(seed=3), TrainingSetup)


def test_train_folds_default_to_every_fold_but_the_validation_one():
    assert parse_args(["--validation_fold", "4"]).data.training_folds() == [1, 2, 3, 5]
    inner = parse_args(["--train_folds", "3", "1", "2", "--validation_fold", "4"])
    assert inner.data.training_folds() == [1, 2, 3]
    assert inner.recipe()["train_folds"] == [3, 1, 2]
    assert inner.fingerprint() != parse_args(["--validation_fold", "4"]).fingerprint()  # another recipe


def test_every_feature_and_model_option_reaches_the_saved_configs():
    """Each ModelArguments field lands in preprocessor_config.json or config.json with the value given."""
    from esc50_hf.training.arguments import build_feature_extractor, build_model

    flags = ["--stem_channels", "0", "--block_channels", "8", "16", "--dropout", "0.2", "--label_smoothing", "0.05"]
    flags += ["--num_mel_bins", "40", "--n_fft", "512", "--hop_length", "256", "--f_min", "20", "--f_max", "8000"]
    arguments = parse_args([*flags, "--sampling_rate", "16000"]).model
    extractor, config = build_feature_extractor(arguments).to_dict(), build_model(arguments).config.to_dict()
    for item in dataclasses.fields(arguments):
        if item.name in arguments.TRANSFER_FIELDS:  # where a run starts, recorded in training_config.json
            continue
        assert item.name in arguments.FEATURE_FIELDS + arguments.MODEL_FIELDS, item.name
        saved = extractor[item.name] if item.name in arguments.FEATURE_FIELDS else config[item.name]
        assert saved == getattr(arguments, item.name), item.name
    assert build_model(arguments).blocks[0].conv1.in_channels == 1  # --stem_channels 0: no stem


@pytest.mark.slow
def test_the_smoke_config_builds_features_only_for_the_clips_it_uses(tmp_path, capsys):
    """Issue 26: configs/smoke.yaml on the real ESC-50 spent ~8 min building features for all 2000 clips (x variants)
    to train 2 epochs. With `max_clips_per_class_and_fold: 1` it uses, and featurizes, one clip of each class in each
    fold: here 250 of a fixture with 2 per class and fold (500), and the full recipe still sees every clip."""
    from esc50_hf.training.arguments import build_feature_extractor
    from esc50_hf.training.fold_features import prepare_features

    from .conftest import write_fake_esc50

    data_dir = write_fake_esc50(tmp_path / "ESC-50", clips_per_class_per_fold=2)
    setup = parse_args(["--config", str(SMOKE), "--data_dir", str(data_dir), "--output_dir", str(tmp_path / "out")])
    assert setup.data.max_clips_per_class_and_fold == 1
    features = prepare_features(setup, build_feature_extractor(setup.model))
    assert (len(features.train[1]), len(features.validation[1])) == (200, 50)
    assert sorted(features.train[1].tolist()) == sorted(list(range(50)) * 4)  # every class in every training fold
    [cache] = (tmp_path / "out" / "feature_cache").glob("*.pt")
    assert len(torch.load(cache)["labels"]) == 250  # built for the clips used, not all 500
    assert len(features.validation_audio) == 50 and set(features.validation_audio["take"]) == {"A"}

    full = parse_args(["--config", str(SMOKE), "--data_dir", str(data_dir), "--max_clips_per_class_and_fold", "8"])
    assert len(full.data.load_dataset(22050)) == 500
    unlimited = parse_args(["--data_dir", str(data_dir)])
    assert "max_clips_per_class_and_fold" not in unlimited.data.recorded()  # the full recipe's fingerprint as before
    with pytest.raises(SystemExit):
        parse_args(["--config", str(SMOKE), "--max_clips_per_class_and_fold", "0"])
    assert "--max_clips_per_class_and_fold must be at least 1" in capsys.readouterr().err


def test_a_recording_condition_is_in_the_recipe_only_when_it_is_on():
    """The recording-condition transforms (off by default) leave the recipe, and so the fingerprint, of runs without
    them as before; a run with one records its probability and ranges, and `--config` reads them back."""
    default = parse_args(["--config", str(REPO / "configs" / "esc50.yaml")])
    assert not {"reverberation_p", "reverberation_max_rt60", "level_min_db", "codec_p"} & set(default.recipe())
    reverberant = parse_args(["--config", str(REPO / "configs" / "esc50.yaml"), "--reverberation_p", "0.25"])
    recipe = reverberant.recipe()
    assert (recipe["reverberation_p"], recipe["reverberation_max_rt60"]) == (0.25, 1.5) and "level_p" not in recipe
    assert reverberant.fingerprint() != default.fingerprint()
