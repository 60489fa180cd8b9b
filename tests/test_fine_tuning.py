"""transformers' audio-classification example, call for call, on the shipped model and the parquet dataset.

The example (examples/pytorch/audio-classification/run_audio_classification.py) loads the dataset's
train and validation splits, builds its label maps from the dataset's `ClassLabel`, loads config,
feature extractor and model through the Auto classes with `trust_remote_code`, calls
`model.freeze_feature_encoder()` (its default), featurises with `set_transform` and trains with
`Trainer`. This test makes the same calls, offline, with the package's accuracy module in place of
`evaluate.load("accuracy")` (which downloads it from the Hub).
"""

import numpy as np
import pytest
import torch
from datasets import Audio, DatasetDict, load_dataset
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Trainer,
    TrainingArguments,
    pipeline,
)

from esc50_hf import ESC50_LABELS
from esc50_hf.evaluation.metrics import load_metric

from .test_shipped_model import SHIPPED


@pytest.mark.slow
def test_official_example_calls_fine_tune_the_shipped_model(parquet_dir, tmp_path):
    raw = DatasetDict(
        train=load_dataset(str(parquet_dir), "fold5", split="train"),
        eval=load_dataset(str(parquet_dir), "fold5", split="validation"),
    )
    extractor = AutoFeatureExtractor.from_pretrained(SHIPPED, return_attention_mask=True, trust_remote_code=True)
    raw = raw.cast_column("audio", Audio(sampling_rate=extractor.sampling_rate))
    input_name = extractor.model_input_names[0]

    def featurise(batch):
        waveforms = [clip["array"] for clip in batch["audio"]]
        features = extractor(waveforms, sampling_rate=extractor.sampling_rate)
        return {input_name: features.get(input_name), "labels": list(batch["label"])}

    names = raw["train"].features["label"].names
    label2id = {name: str(index) for index, name in enumerate(names)}  # the example's maps: string ids
    id2label = {str(index): name for index, name in enumerate(names)}
    config = AutoConfig.from_pretrained(
        SHIPPED,
        num_labels=len(names),
        label2id=label2id,
        id2label=id2label,
        finetuning_task="audio-classification",
        trust_remote_code=True,
    )
    model = AutoModelForAudioClassification.from_pretrained(SHIPPED, config=config, trust_remote_code=True)
    # The trained head keeps its meaning: the dataset's ids name the classes the model learnt them as.
    assert {int(index): name for index, name in model.config.id2label.items()} == dict(enumerate(ESC50_LABELS))
    model.freeze_feature_encoder()  # the example's default: a documented no-op here
    assert all(parameter.requires_grad for parameter in model.parameters())
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}

    raw["train"].set_transform(featurise, output_all_columns=False)
    raw["eval"].set_transform(featurise, output_all_columns=False)
    accuracy = load_metric("accuracy")
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(tmp_path / "fine-tuned"),
            max_steps=3,
            per_device_train_batch_size=8,
            per_device_eval_batch_size=50,
            learning_rate=3e-5,
            remove_unused_columns=False,  # the one flag the example needs beyond its defaults
            report_to="none",
            use_cpu=True,
        ),
        train_dataset=raw["train"],
        eval_dataset=raw["eval"],
        compute_metrics=lambda prediction: accuracy.compute(
            predictions=np.argmax(prediction.predictions, axis=1), references=prediction.label_ids
        ),
        processing_class=extractor,
    )
    result = trainer.train()
    trainer.save_model()
    metrics = trainer.evaluate()

    assert trainer.state.global_step == 3 and np.isfinite(result.training_loss)
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and np.isfinite(metrics["eval_loss"])
    after = model.state_dict()
    assert any(not torch.equal(before[name], after[name]) for name in before if name.startswith("blocks."))
    assert AutoConfig.from_pretrained(tmp_path / "fine-tuned").id2label == dict(enumerate(ESC50_LABELS))
    classifier = pipeline("audio-classification", model=str(tmp_path / "fine-tuned"), trust_remote_code=True)
    top = classifier(np.zeros(extractor.sampling_rate, dtype=np.float32), top_k=50)
    assert sorted(item["label"] for item in top) == sorted(ESC50_LABELS)
