"""`evaluate.evaluator("audio-classification")` made to work by `evaluator_compatible`, scoring as esc50-hf evaluate."""

import pytest
from datasets import Audio, load_dataset
from evaluate import evaluator
from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

from esc50_hf import audio_pipeline
from esc50_hf.evaluation.evaluator import evaluator_compatible
from esc50_hf.evaluation.scoring import evaluate_model

from .test_shipped_model import SHIPPED


@pytest.fixture(scope="module")
def fold5(parquet_dir):
    """Half of the fixture's fold 5 (25 clips, every other class): the pipeline scores clip by clip."""
    return load_dataset(str(parquet_dir), "fold5", split="validation").select(range(0, 50, 2))


@pytest.fixture(scope="module")
def reference_scores(fold5):
    """The supported route: the model and its extractor, batched over the fold (`esc50-hf evaluate`)."""
    model = AutoModelForAudioClassification.from_pretrained(SHIPPED)
    extractor = AutoFeatureExtractor.from_pretrained(SHIPPED)
    return evaluate_model(model, extractor, fold5)


def test_the_stock_evaluator_fails_with_the_pinned_versions(fold5):
    """Why the shim exists; when this starts passing, the shim can go."""
    classifier = audio_pipeline(str(SHIPPED))
    with pytest.raises(AttributeError, match="TFPreTrainedModel"):
        evaluator("audio-classification").compute(model_or_pipeline=classifier, data=fold5, input_column="audio")


@pytest.mark.slow
def test_shim_scores_the_dataset_audio_column_like_esc50_hf_evaluate(fold5, reference_scores):
    task_evaluator = evaluator_compatible(evaluator("audio-classification"))
    results = task_evaluator.compute(
        model_or_pipeline=audio_pipeline(str(SHIPPED)),
        data=fold5,
        input_column="audio",
        label_column="label",
    )
    assert results["accuracy"] == pytest.approx(reference_scores["accuracy"], abs=1e-9)
    assert results["total_time_in_seconds"] > 0


@pytest.mark.slow
def test_shim_builds_the_pipeline_from_a_folder_and_reports_macro_f1(fold5, reference_scores):
    results = evaluator_compatible().compute(model_or_pipeline=SHIPPED, data=fold5, input_column="audio", metric="f1")
    assert results["f1"] == pytest.approx(reference_scores["f1"], abs=1e-9)


def test_shim_passes_other_rates_to_the_pipeline_to_resample(fold5):
    clips = fold5.select(range(10)).cast_column("audio", Audio(sampling_rate=16000))
    results = evaluator_compatible().compute(model_or_pipeline=SHIPPED, data=clips, input_column="audio")
    assert results["accuracy"] in {index / 10 for index in range(11)}


def test_shim_is_only_for_audio_classification():
    with pytest.raises(ValueError, match="audio-classification"):
        evaluator_compatible(evaluator("text-classification"))
