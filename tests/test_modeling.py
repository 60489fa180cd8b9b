"""The CNN as a PreTrainedModel: outputs, losses, gradients, save/load and Auto-class registration."""

import pytest
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from esc50_hf import ESC50_LABELS, Esc50CnnConfig, Esc50CnnForAudioClassification, Esc50FeatureExtractor


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Esc50CnnForAudioClassification(Esc50CnnConfig(num_mel_bins=32, block_channels=[8, 16], label_smoothing=0.1))


def test_config_carries_the_esc50_labels():
    config = Esc50CnnConfig()
    assert config.model_type == "esc50_cnn"
    assert config.num_labels == 50
    assert [config.id2label[i] for i in range(50)] == list(ESC50_LABELS)
    assert config.label2id["dog"] == 0 and config.label2id["hand_saw"] == 49


def test_forward_returns_logits_and_loss(model):
    inputs = torch.randn(3, 32, 216)
    output = model(input_values=inputs, labels=torch.tensor([0, 5, 49]))
    assert isinstance(output, SequenceClassifierOutput)
    assert output.logits.shape == (3, 50)
    expected = torch.nn.functional.cross_entropy(output.logits, torch.tensor([0, 5, 49]), label_smoothing=0.1)
    torch.testing.assert_close(output.loss, expected)
    assert model(input_values=inputs).loss is None


def test_the_atypicality_reads_every_batch_norm_layer_against_its_running_statistics(model):
    """`output_atypicality=True`: per input, the mean over the batch-norm layers of log(mean over channels of z^2),
    z the input's channel means standardised by the layer's running statistics; the logits are the same with or
    without it, and nothing else changes when it is not asked for."""
    for norm in (module for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)):
        norm.running_mean.uniform_(-0.5, 0.5)  # statistics of "training clips" that are not the identity
        norm.running_var.uniform_(0.5, 2.0)
    model.eval()
    deviations = {}

    def record(norm, inputs, _):
        means = inputs[0].mean(dim=tuple(range(2, inputs[0].ndim)))
        z = (means - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
        deviations[norm] = torch.log(z.pow(2).mean(dim=1))

    norms = [module for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    hooks = [norm.register_forward_hook(record) for norm in norms]
    inputs = torch.randn(3, 32, 216) * torch.tensor([1.0, 3.0, 10.0])[:, None, None]
    with torch.no_grad():
        output = model(input_values=inputs, output_atypicality=True)
    for hook in hooks:
        hook.remove()
    assert len(deviations) == len(norms) == 2 + 2 * len(model.blocks)  # input_norm, the stem, two per block
    expected = torch.stack([deviations[norm] for norm in norms], dim=1).mean(dim=1)
    torch.testing.assert_close(output.atypicality, expected)
    assert output.atypicality[2] > output.atypicality[0]  # ten times the scale of what it saw: less typical
    with torch.no_grad():
        plain = model(input_values=inputs)
        as_tuple = model(input_values=inputs, return_dict=False, output_atypicality=True)
    assert plain.atypicality is None
    torch.testing.assert_close(plain.logits, output.logits)
    torch.testing.assert_close(as_tuple[1], output.atypicality)


def test_soft_targets_match_hard_targets_when_one_hot(model):
    model.eval()
    inputs, labels = torch.randn(4, 32, 100), torch.tensor([1, 2, 3, 4])
    hard = model(input_values=inputs, labels=labels).loss
    soft = model(input_values=inputs, labels=torch.nn.functional.one_hot(labels, 50).float()).loss
    torch.testing.assert_close(hard, soft)


def test_backward_reaches_every_parameter(model):
    model(input_values=torch.randn(2, 32, 216), labels=torch.tensor([7, 8])).loss.backward()
    missing = [
        name for name, parameter in model.named_parameters() if parameter.grad is None or not parameter.grad.abs().sum()
    ]
    assert not missing


def test_any_clip_length_works(model):
    model.eval()
    assert model(input_values=torch.randn(1, 32, 64)).logits.shape == (1, 50)


def test_wrong_input_shape_is_a_clear_error(model):
    with pytest.raises(ValueError, match=r"\(batch, 32, frames\)"):
        model(input_values=torch.randn(2, 64, 216))


def test_save_and_load_give_identical_logits(model, tmp_path):
    model.eval()
    inputs = torch.randn(2, 32, 216)
    expected = model(input_values=inputs).logits
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = Esc50CnnForAudioClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(input_values=inputs).logits, expected, rtol=0, atol=0)


def test_auto_classes_resolve_the_saved_folder(saved_model_dir):
    assert isinstance(AutoConfig.from_pretrained(saved_model_dir), Esc50CnnConfig)
    assert isinstance(AutoModelForAudioClassification.from_pretrained(saved_model_dir), Esc50CnnForAudioClassification)
    assert isinstance(AutoFeatureExtractor.from_pretrained(saved_model_dir), Esc50FeatureExtractor)


def test_saved_folder_carries_code_and_auto_map(saved_model_dir):
    import json

    config = json.loads((saved_model_dir / "config.json").read_text())
    assert config["auto_map"]["AutoModelForAudioClassification"] == "modeling_esc50_cnn.Esc50CnnForAudioClassification"
    preprocessor = json.loads((saved_model_dir / "preprocessor_config.json").read_text())
    assert preprocessor["auto_map"]["AutoFeatureExtractor"] == "feature_extraction_esc50.Esc50FeatureExtractor"
    for code in ("configuration_esc50_cnn.py", "modeling_esc50_cnn.py", "feature_extraction_esc50.py", "labels.py"):
        assert (saved_model_dir / code).is_file(), code


def test_the_stem_halves_the_resolution_cheaply_and_can_be_left_out():
    from torch.utils.flop_counter import FlopCounterMode

    with_stem = Esc50CnnForAudioClassification(Esc50CnnConfig(stem_channels=16)).eval()
    without = Esc50CnnForAudioClassification(Esc50CnnConfig(stem_channels=0)).eval()
    assert with_stem.stem(torch.zeros(1, 1, 64, 216)).shape == (1, 16, 32, 108)
    assert (with_stem.blocks[0].conv1.in_channels, without.blocks[0].conv1.in_channels) == (16, 1)
    assert not any(name.startswith("stem.") for name in without.state_dict())  # the architecture without a stem
    flops = []
    for network in (with_stem, without):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            network(torch.zeros(1, 64, 216))
        flops.append(counter.get_total_flops())
    assert flops[0] < flops[1] / 3  # the blocks run at a quarter of the pixels
    with pytest.raises(ValueError, match="stem_channels must be 0 \\(no stem\\) or more, got -1"):
        Esc50CnnConfig(stem_channels=-1)


def test_a_folder_saved_before_the_stem_existed_loads_the_network_it_describes(tmp_path):
    import json

    torch.manual_seed(0)
    old = Esc50CnnForAudioClassification(Esc50CnnConfig(num_mel_bins=32, stem_channels=0, block_channels=[8, 16]))
    old.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["stem_channels"]  # what the previous version wrote
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.stem_channels == 0
    inputs = torch.randn(2, 32, 216)
    torch.testing.assert_close(loaded(input_values=inputs).logits, old.eval()(input_values=inputs).logits)
    assert Esc50CnnConfig().stem_channels == 16  # a new config gets the stem


def test_weights_load_by_name_and_a_new_head_on_request(saved_model_dir):
    """No `base_model_prefix` that names no submodule: every saved weight loads where it was, and
    `ignore_mismatched_sizes` swaps only the classifier for a head of another size (fine-tuning)."""
    from esc50_hf.paths import DEFAULT_MODEL_DIR

    for folder in (saved_model_dir, DEFAULT_MODEL_DIR):
        model, info = AutoModelForAudioClassification.from_pretrained(folder, output_loading_info=True)
        assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), (folder, info)
    prefix = model.base_model_prefix
    assert prefix == "" or isinstance(getattr(model, prefix, None), torch.nn.Module)
    ten = AutoModelForAudioClassification.from_pretrained(
        DEFAULT_MODEL_DIR, num_labels=10, ignore_mismatched_sizes=True
    )
    assert ten.classifier.weight.shape == (10, model.classifier.in_features)
    torch.testing.assert_close(ten.blocks[-1].conv2.weight, model.blocks[-1].conv2.weight)


def test_label_smoothing_has_one_default_and_a_saved_config_keeps_its_own(tmp_path):
    """The training recipe's default is the model config's; a config saved with any value (0.0 included) records it,
    so changing the default never changes what a saved model trains with."""
    import json

    from esc50_hf.training.arguments import ModelArguments

    assert ModelArguments().label_smoothing == Esc50CnnConfig().label_smoothing == 0.1
    Esc50CnnConfig(label_smoothing=0.0).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["label_smoothing"] == 0.0
    assert AutoConfig.from_pretrained(tmp_path).label_smoothing == 0.0
