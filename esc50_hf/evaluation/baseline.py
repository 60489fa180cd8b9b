"""A classical baseline: handcrafted librosa features per clip + StandardScaler + scikit-learn MLP.

It answers "what does the CNN buy us?" on the same folds and with the same scoring
(`evaluation.scoring.score_predictions`, built on `evaluation.metrics.classification_metrics`).
"""

import time
from typing import Any

import librosa
import numpy as np
import torch
from datasets import Dataset
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from ..data.esc50 import decoded_mono, load_esc50, split_folds
from ..model.labels import SAMPLING_RATE
from .scoring import score_predictions

N_MFCC = 20
N_FFT = 2048  # librosa's defaults: the usual setting for these descriptors
HOP_LENGTH = 512
# sklearn's default (200) stops before the Adam loss converges on ~1600 clips x 70 features.
MAX_ITER = 1000

# Each frame-level descriptor contributes its mean and standard deviation over the clip.
FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{name}_{statistic}"
    for name in (
        "zcr",
        "spectral_centroid",
        "tempo",
        *(f"chroma_{pitch}" for pitch in range(12)),
        *(f"mfcc_{index}" for index in range(N_MFCC)),
    )
    for statistic in ("mean", "std")
)


def clip_descriptors(waveform: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Frame-level descriptors of one clip, `(descriptors, frames)`: ZCR, centroid, tempo, chroma, MFCC."""
    magnitude = np.abs(librosa.stft(waveform, n_fft=N_FFT, hop_length=HOP_LENGTH))
    power = magnitude**2  # one STFT shared by centroid, chroma and MFCC
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sampling_rate))
    rows = [
        librosa.feature.zero_crossing_rate(waveform, frame_length=N_FFT, hop_length=HOP_LENGTH),
        librosa.feature.spectral_centroid(S=magnitude, sr=sampling_rate),
        # Local tempo estimate per frame (aggregate=None), so that it also gets a mean and a spread.
        librosa.feature.tempo(y=waveform, sr=sampling_rate, hop_length=HOP_LENGTH, aggregate=None)[None],
        # tuning=0: A440 bins. Tuning estimation means little for environmental sound and warns on silence.
        librosa.feature.chroma_stft(S=power, sr=sampling_rate, tuning=0.0),
        librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC),
    ]
    frames = min(row.shape[-1] for row in rows)
    return np.concatenate([row[:, :frames] for row in rows])


def clip_features(waveform: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """The clip's feature vector: mean and std of every descriptor, ordered as `FEATURE_NAMES`."""
    descriptors = clip_descriptors(np.asarray(waveform, dtype=np.float32), sampling_rate)
    return np.stack([descriptors.mean(axis=1), descriptors.std(axis=1)], axis=1).reshape(-1).astype(np.float32)


class _ClipFeatures(torch.utils.data.Dataset):
    """Item i: the feature vector of clip i (decoded in the DataLoader worker) and its label."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.sampling_rate = dataset.features["audio"].sampling_rate

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        example = self.dataset[index]
        return clip_features(decoded_mono(example["audio"]), self.sampling_rate), example["label"]


def extract_features(dataset: Dataset, workers: int = 2, desc: str = "Features") -> tuple[np.ndarray, np.ndarray]:
    """`(features (clips, len(FEATURE_NAMES)), labels (clips,))`; decoding and librosa run in `workers` processes."""
    loader = torch.utils.data.DataLoader(
        _ClipFeatures(dataset), batch_size=None, num_workers=workers, collate_fn=_as_is
    )
    features, labels = [], []
    for vector, label in tqdm(loader, total=len(dataset), desc=desc, unit="clip"):
        features.append(vector)
        labels.append(label)
    return np.stack(features), np.asarray(labels, dtype=np.int64)


def _as_is(item: tuple[np.ndarray, int]) -> tuple[np.ndarray, int]:
    return item  # keep numpy vectors (the default collate would turn them into tensors)


def build_classifier(seed: int = 0, max_iter: int = MAX_ITER) -> Pipeline:
    """StandardScaler + MLPClassifier with scikit-learn's defaults, except `random_state` and `max_iter`."""
    return make_pipeline(StandardScaler(), MLPClassifier(random_state=seed, max_iter=max_iter))


def run_baseline(
    data_dir: str | None = None, fold: int = 5, workers: int = 2, seed: int = 0, max_iter: int = MAX_ITER
) -> dict[str, Any]:
    """Trains on every fold but `fold`, scores on `fold`; returns the scores plus timings and settings."""
    start = time.perf_counter()
    splits = split_folds(load_esc50(data_dir, SAMPLING_RATE), fold)
    train_x, train_y = extract_features(splits["train"], workers, desc="Features (train)")
    test_x, test_y = extract_features(splits["validation"], workers, desc=f"Features (fold {fold})")
    features_done = time.perf_counter()
    classifier = build_classifier(seed, max_iter).fit(train_x, train_y)
    scores = score_predictions(classifier.predict(test_x), test_y)
    finished = time.perf_counter()
    mlp = classifier[-1]
    return {
        "model": "librosa features + StandardScaler + MLPClassifier",
        "fold": fold,
        "num_train_clips": int(len(train_y)),
        "features": list(FEATURE_NAMES),
        "classifier": {"random_state": seed, "max_iter": max_iter, "iterations_run": int(mlp.n_iter_)},
        "feature_seconds": round(features_done - start, 1),
        "fit_seconds": round(finished - features_done, 1),
        "wall_seconds": round(finished - start, 1),
        **scores,
    }


__all__ = ["FEATURE_NAMES", "build_classifier", "clip_features", "extract_features", "run_baseline"]
