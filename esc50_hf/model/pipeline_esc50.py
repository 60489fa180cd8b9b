"""`Esc50AudioClassificationPipeline`: the `transformers` audio-classification pipeline of this model.

Saved with the model (its `config.json` declares it under `custom_pipelines`), so that

    pipeline("audio-classification", model=FOLDER_OR_HUB_ID, trust_remote_code=True)

runs this class, from the folder's own copy of this file, in a process that never imports
`esc50_hf`. With the package installed, `esc50_hf.audio_pipeline(model)` (or
`pipeline(..., pipeline_class=Esc50AudioClassificationPipeline)`) gives the same pipeline
without remote code.

It differs from transformers' generic `AudioClassificationPipeline` where this model needs it:

* **The project's input path.** Files and bytes are decoded in-process (libsndfile, then
  FFmpeg through torchcodec; no `ffmpeg` subprocess per call), header checked first and
  decoded block by block, with the limits and error messages of the app and the CLI
  (`audio_io.AudioInputError`; `max_seconds=None` lifts the length limit).
* **Whole recordings.** Input longer than a clip is classified in 5-s windows every
  `hop_seconds` (the windows of `windows.py`, weighted by real samples and power, as `SoundClassifier`
  does), not cropped to its first 5 s. Each window is one item of the pipeline's batches.
* **The model's own labels.** Scores are named by the model's `config.id2label`, whatever their
  number and order (a model trained on other classes answers with its classes).
* **The same output contract.** A list of `{"label", "score"}` sorted by score (`top_k`, 5 by
  default); `return_timeline=True` returns `{"labels": [...], "timeline": [{"start_s", "end_s",
  "label", "score"}, ...], "duration_s": ...}` instead: the rows of the prediction schema
  (`prediction.py`) with exact scores, the windows under the name "timeline".
* **Calibrated scores and "none of these".** The scores are the model's calibrated probabilities
  (its `config.calibration_temperature`). With `unknown_threshold=True` (the model's fitted
  `config.unknown_threshold`) or a number, the answer is a dict `{"labels": [...], "unknown": bool}`
  (plus the timeline if asked): `unknown` is true when the unknown score (the top score, read with the
  network's atypicality for a model with `config.unknown_quantiles`: `prediction.unknown_score`) is below
  the threshold, the clip being none of the known sounds; `labels` still holds the best guesses. Nothing changes for
  callers who do not pass it.

Inputs: a file path, the file's bytes, a 1-D float array at the model's rate, a
`{"array"|"raw": array, "sampling_rate": rate}` dict (numpy or torch), or a torchcodec
`AudioDecoder` (what a `datasets` Audio column holds).
"""

from collections.abc import Iterator
from typing import Any

import torch
from transformers.pipelines.base import ChunkPipeline

from .audio_io import DEFAULT_LIMITS, AudioInputError, AudioLimits, audio_blocks
from .labels import model_labels, resolve_unknown_threshold
from .windows import WindowPool, hop_samples, iter_windows, softmax, window_power


class Esc50AudioClassificationPipeline(ChunkPipeline):
    """Audio classification over recordings of any length, with the project's decoding and limits.

    Call parameters:
        top_k (`int`, *optional*, defaults to 5): Labels returned, best first.
        return_timeline (`bool`, *optional*, defaults to `False`): Also return the best label of each window.
        hop_seconds (`float`, *optional*): Step between windows (default: half a clip, 2.5 s).
        max_seconds (`float` or `None`, *optional*, defaults to 600): Longest input; `None` for no limit.
        unknown_threshold (`bool` or `float`, *optional*): Also say whether the clip is none of the known sounds:
            `True` uses the model's fitted `config.unknown_threshold`, a number in [0, 1] is the threshold itself.
    """

    # The components `transformers.pipeline` loads for it: the feature extractor only.
    _load_feature_extractor = True
    _load_image_processor = False
    _load_processor = False
    _load_tokenizer = False

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        return_timeline: bool | None = None,
        hop_seconds: float | None = None,
        max_seconds: float | None | str = "default",
        unknown_threshold: bool | float | None = None,
        **kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        preprocess: dict[str, Any] = {}
        postprocess: dict[str, Any] = {}
        if hop_seconds is not None:
            extractor = self.feature_extractor
            preprocess["hop"] = hop_samples(hop_seconds, extractor.clip_samples, extractor.sampling_rate)
        if max_seconds != "default":
            preprocess["limits"] = AudioLimits(max_seconds=max_seconds)
        if top_k is not None:
            if top_k < 1:
                raise ValueError(f"top_k must be at least 1, got {top_k}")
            postprocess["top_k"] = min(top_k, self.model.config.num_labels)
        if return_timeline is not None:
            postprocess["return_timeline"] = return_timeline
        if unknown_threshold is not None and unknown_threshold is not False:
            postprocess["unknown_threshold"] = resolve_unknown_threshold(self.model.config, unknown_threshold)
        return preprocess, {}, postprocess

    def preprocess(
        self, inputs: Any, hop: int | None = None, limits: AudioLimits = DEFAULT_LIMITS
    ) -> Iterator[dict[str, Any]]:
        rate = self.feature_extractor.sampling_rate
        clip = self.feature_extractor.clip_samples
        hop = hop or hop_samples(None, clip, rate)
        windows = iter_windows(audio_blocks(inputs, rate, limits), clip, hop)
        current = next(windows, None)
        if current is None:
            raise AudioInputError("The audio is empty (0 samples).")
        while current is not None:
            following = next(windows, None)
            start, samples = current
            features = self.feature_extractor(samples, sampling_rate=rate, return_tensors="pt")
            yield {
                "input_values": features["input_values"],
                "start": torch.tensor([start]),
                "num_samples": torch.tensor([len(samples)]),
                "power": torch.tensor([window_power(samples)], dtype=torch.float64),
                "is_last": following is None,
            }
            current = following

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        is_last = model_inputs.pop("is_last")
        start, num_samples, power = (model_inputs.pop(key) for key in ("start", "num_samples", "power"))
        wanted = getattr(self.model.config, "unknown_quantiles", None) is not None  # the unknown score reads it
        output = self.model(input_values=model_inputs["input_values"].to(self.dtype), output_atypicality=wanted)
        outputs = {"logits": output.logits.float(), "start": start, "num_samples": num_samples, "power": power}
        if wanted:
            outputs["atypicality"] = output.atypicality.float()
        return outputs | {"is_last": is_last}

    def postprocess(
        self,
        model_outputs: list[dict[str, Any]],
        top_k: int = 5,
        return_timeline: bool = False,
        unknown_threshold: float | None = None,
    ) -> list[dict[str, Any]] | dict[str, Any]:
        logits = torch.cat([output["logits"].reshape(1, -1) for output in model_outputs]).double().numpy()
        windows = [
            (int(output["start"].reshape(-1)[0]), int(output["num_samples"].reshape(-1)[0])) for output in model_outputs
        ]
        extractor, config = self.feature_extractor, self.model.config
        quantiles = getattr(config, "unknown_quantiles", None)
        pool = WindowPool(extractor.sampling_rate, extractor.clip_samples, model_labels(config), quantiles)
        powers = [float(output["power"].reshape(-1)[0]) for output in model_outputs]
        atypicality = None
        if all("atypicality" in output for output in model_outputs):
            atypicality = [float(output["atypicality"].reshape(-1)[0]) for output in model_outputs]
        pool.add(windows, softmax(logits), powers, atypicality)  # (start, num_samples) pairs
        # The schema's row with exact scores, as transformers' pipelines return them; its "windows" are the
        # "timeline" here, the name this pipeline's output has always had.
        prediction = pool.prediction(top_k)
        if unknown_threshold is not None:
            prediction = prediction.with_unknown(unknown_threshold)
        row = prediction.to_row(digits=None)
        if not return_timeline and unknown_threshold is None:
            return row["labels"]
        output = {"labels": row["labels"]}
        if unknown_threshold is not None:
            output["unknown"] = row["unknown"]
        if return_timeline:
            output.update(timeline=row["windows"], duration_s=row["duration_s"])
        return output


__all__ = ["Esc50AudioClassificationPipeline"]
