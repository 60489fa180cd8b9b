"""The ESC-50 log-mel CNN as a `transformers` model."""

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_esc50_cnn import Esc50CnnConfig


@dataclass
class Esc50CnnOutput(SequenceClassifierOutput):
    """`SequenceClassifierOutput`, and with `output_atypicality=True` each input's `atypicality` (`(batch,)`): the
    mean over the batch-norm layers of `batch_norm_deviation`, higher for inputs less like the training clips."""

    atypicality: torch.FloatTensor | None = None


def batch_norm_deviation(norm: nn.Module, normalized: torch.Tensor) -> torch.Tensor:
    """`(batch,)` `log(mean(z ** 2))` over `norm`'s channels, `z` a channel's mean input standardised by the running
    statistics: `(mean(output) - bias) / weight` in evaluation, read from the output so that ONNX Runtime can still
    fuse the convolution before `norm` with it."""
    mean = normalized.mean(dim=tuple(range(2, normalized.ndim)))
    z = (mean - norm.bias) / norm.weight
    return torch.log(z.pow(2).mean(dim=1) + 1e-12)


class Esc50ConvBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and ReLU, then 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels)

    def forward(self, hidden: torch.Tensor, deviations: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`deviations`, when given, gets each batch-norm layer's `batch_norm_deviation` appended."""
        for conv, norm in ((self.conv1, self.norm1), (self.conv2, self.norm2)):
            hidden = norm(conv(hidden))
            if deviations is not None:
                deviations.append(batch_norm_deviation(norm, hidden))
            hidden = F.relu(hidden)
        return F.avg_pool2d(hidden, kernel_size=2)


class Esc50Stem(nn.Module):
    """One 3x3 convolution with batch norm and ReLU, then 2x2 average pooling: full resolution in, half out."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, hidden: torch.Tensor, deviations: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`deviations`, when given, gets the batch-norm layer's `batch_norm_deviation` appended."""
        hidden = self.norm(self.conv(hidden))
        if deviations is not None:
            deviations.append(batch_norm_deviation(self.norm, hidden))
        return F.avg_pool2d(F.relu(hidden), kernel_size=2)


class Esc50CnnPreTrainedModel(PreTrainedModel):
    # No `base_model_prefix`: there is no separate base model (the convolutions sit on the classification model
    # itself), so transformers' default, "", is right: the model is its own `base_model` and weights load by name.
    config_class = Esc50CnnConfig
    main_input_name = "input_values"
    # The loss is a per-batch mean: DDP must not rescale it by the number of processes.
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
            if module.running_mean is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.num_batches_tracked.zero_()


class Esc50CnnLayers:
    """The layers of one network and its clip embedding: per-band input standardisation, stem, blocks, global pooling
    (mean over frequency, then mean + max over time), dropout and classifier. The model is its first network (its
    layers sit on the model itself, as in every model saved before it could hold more); a model of
    `config.num_networks` > 1 holds the others in `ensemble` (`Esc50CnnNetwork`)."""

    def _add_layers(self, config: Esc50CnnConfig) -> None:
        channels = [config.stem_channels or 1, *config.block_channels]
        self.input_norm = nn.BatchNorm1d(config.num_mel_bins)  # per-mel-band standardisation
        self.stem = Esc50Stem(config.stem_channels) if config.stem_channels else nn.Identity()
        self.blocks = nn.ModuleList(
            Esc50ConvBlock(in_channels, out_channels) for in_channels, out_channels in zip(channels[:-1], channels[1:])
        )
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(channels[-1], config.num_labels)

    def _embed(self, input_values: torch.Tensor, deviations: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The clip embedding; `deviations`, when given, gets every batch-norm layer's `batch_norm_deviation`."""
        hidden = self.input_norm(input_values)
        if deviations is not None:
            deviations.append(batch_norm_deviation(self.input_norm, hidden))
        hidden = hidden.unsqueeze(1)  # (batch, 1, mels, frames)
        hidden = self.stem(hidden) if isinstance(self.stem, nn.Identity) else self.stem(hidden, deviations)
        for block in self.blocks:
            hidden = block(hidden, deviations)  # (batch, channels, mels, frames), halved by each block
        hidden = hidden.mean(dim=2)  # average over frequency
        return hidden.mean(dim=-1) + hidden.amax(dim=-1)  # mean + max over time


class Esc50CnnNetwork(Esc50CnnLayers, nn.Module):
    """A further network of a model of several (`Esc50CnnLayers`)."""

    def __init__(self, config: Esc50CnnConfig) -> None:
        super().__init__()
        self._add_layers(config)


class Esc50CnnForAudioClassification(Esc50CnnLayers, Esc50CnnPreTrainedModel):
    """Log-mel CNN with a global pooling head; with `config.num_networks` > 1, that many networks trained apart whose
    probabilities are averaged.

    Input: `input_values` of shape `(batch, num_mel_bins, frames)` from `Esc50FeatureExtractor`.
    Output: `Esc50CnnOutput` with one logit per label (calibrated: `config.calibration_temperature`);
    `loss` when `labels` are given, either
    class indices `(batch,)` or class probabilities `(batch, num_labels)` (mixup targets); the inputs'
    `atypicality` when asked for.
    """

    def __init__(self, config: Esc50CnnConfig) -> None:
        super().__init__(config)
        self._add_layers(config)
        self.ensemble = nn.ModuleList(Esc50CnnNetwork(config) for _ in range(config.num_networks - 1))
        self.post_init()

    def networks(self) -> list[Esc50CnnLayers]:
        """The model's networks: itself, then those of `ensemble`."""
        return [self, *self.ensemble]

    def freeze_feature_encoder(self) -> None:
        """Does nothing: there is no pretrained feature encoder to freeze.

        Speech models (wav2vec 2.0, HuBERT) freeze their pretrained convolutional waveform encoder here,
        and transformers' audio-classification example calls this method by default. This network reads
        log-mel spectrograms from `Esc50FeatureExtractor` (fixed, not learned) and trains every layer
        from scratch, so all parameters stay trainable. To train only the classifier heads, set
        `requires_grad_(False)` on every parameter but those of each network's `classifier` (`networks()`).
        """

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, refusing weights of another number of networks than `num_networks`."""
        asked = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        stray = [key for key in (*info["missing_keys"], *info["unexpected_keys"]) if "ensemble." in key]
        if stray:
            raise ValueError(
                f"The weights are not those of {model.config.num_networks} network(s) (config.num_networks): "
                f"{sorted(stray)[0]} is missing or left over. Load the folder as saved, without num_networks."
            )
        return (model, info) if asked else model

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`, plus the model's pipeline code (declared in `config.custom_pipelines`)."""
        from transformers.dynamic_module_utils import custom_object_save

        from .pipeline_esc50 import Esc50AudioClassificationPipeline

        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            custom_object_save(Esc50AudioClassificationPipeline, save_directory)  # with audio_io.py and windows.py

    def pooled_embedding(self, input_values: torch.Tensor) -> torch.Tensor:
        """`(batch, mels, frames)` -> `(batch, channels)` clip embedding (the networks' side by side)."""
        self._check_input(input_values)
        return torch.cat([network._embed(input_values) for network in self.networks()], dim=-1)

    def _check_input(self, input_values: torch.Tensor) -> None:
        if input_values.ndim != 3 or input_values.shape[1] != self.config.num_mel_bins:
            raise ValueError(
                f"input_values must have shape (batch, {self.config.num_mel_bins}, frames), "
                f"got {tuple(input_values.shape)}"
            )

    def forward(
        self,
        input_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        output_atypicality: bool = False,
        **kwargs,
    ) -> Esc50CnnOutput | tuple:
        r"""Classifies a batch of log-mel spectrograms.

        Args:
            input_values (`torch.Tensor` of shape `(batch, num_mel_bins, frames)`):
                Normalised log-mel features from `Esc50FeatureExtractor` (any number of frames: 216 for a 5-s clip).
            labels (`torch.Tensor` of shape `(batch,)` or `(batch, num_labels)`, *optional*):
                Class indices, or class probabilities (mixup targets); the loss is cross-entropy with the config's
                `label_smoothing`.
            return_dict (`bool`, *optional*):
                Return an `Esc50CnnOutput` (default: `config.return_dict`) rather than a tuple.
            output_atypicality (`bool`, *optional*, defaults to `False`):
                Also return each input's `atypicality` (see `Esc50CnnOutput`), for the "none of these" answer.
            **kwargs:
                Ignored; accepted because the Trainer passes extra arguments (e.g. `num_items_in_batch`).

        Returns:
            `Esc50CnnOutput` with `logits` of shape `(batch, num_labels)` (of several networks: the log of their mean
            probability), divided by the config's
            `calibration_temperature` (so their softmax is the calibrated probability), when `labels` are given the
            scalar `loss` (of the logits before that division), and the `atypicality` when asked for; or the tuple
            `(logits,)` / `(loss, logits)` (then `atypicality` last) when `return_dict` is false.
        """
        self._check_input(input_values)
        deviations: list[torch.Tensor] | None = [] if output_atypicality else None
        raws = [net.classifier(net.dropout(net._embed(input_values, deviations))) for net in self.networks()]
        # One network: its logits. More: the log of their mean probability (a softmax of it is that mean).
        raw = raws[0] if len(raws) == 1 else torch.logsumexp(torch.stack(raws).log_softmax(-1), 0) - math.log(len(raws))
        atypicality = None if deviations is None else torch.stack(deviations, dim=1).mean(dim=1)
        loss = None if labels is None else sum(self.loss(one, labels) for one in raws) / len(raws)
        temperature = getattr(self.config, "calibration_temperature", 1.0)
        logits = raw if temperature == 1.0 else raw / temperature
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if not return_dict:
            return tuple(value for value in (loss, logits, atypicality) if value is not None)
        return Esc50CnnOutput(loss=loss, logits=logits, atypicality=atypicality)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against class indices or class probabilities, with label smoothing."""
        if labels.is_floating_point() and labels.ndim == 2:
            smoothing = self.config.label_smoothing
            labels = labels * (1.0 - smoothing) + smoothing / self.config.num_labels
            return torch.sum(-labels * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()
        return F.cross_entropy(logits.float(), labels.long(), label_smoothing=self.config.label_smoothing)


__all__ = [
    "Esc50CnnForAudioClassification",
    "Esc50CnnNetwork",
    "Esc50CnnOutput",
    "Esc50CnnPreTrainedModel",
    "batch_norm_deviation",
]
