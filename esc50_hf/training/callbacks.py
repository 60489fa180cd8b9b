"""Trainer callbacks of the recipe: seconds per epoch (`EpochTimer`) and the exponential moving average of the
weights (`WeightAverage`)."""

import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .run_folder import (
    EMA_FILE,
)


class EpochTimer(TrainerCallback):
    """Wall time of each training epoch run in this process (evaluation and checkpointing excluded)."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs) -> None:
        self.durations.append(time.perf_counter() - self._started)


class WeightAverage(TrainerCallback):
    """An exponential moving average of the weights and batch-norm statistics, updated after every optimizer step.

    torch's `AveragedModel` keeps the average; it is written into each checkpoint folder just before the
    Trainer fills it (`ema_model.safetensors`) and read back on resume, so a resumed run averages as an
    uninterrupted one. `copy_to` puts the average into the model once training ends.

    Args:
        decay (`float`):
            Weight of the old average at each step, in (0, 1).
        resume_from (`str`, *optional*):
            The checkpoint the run resumes from.
    """

    FILE_NAME = EMA_FILE

    def __init__(self, decay: float, resume_from: str | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay, self.resume_from = decay, resume_from
        self.average: AveragedModel | None = None

    def on_train_begin(self, args, state, control, model=None, **kwargs) -> None:
        horizon = round(1 / (1 - self.decay))
        if state.max_steps < horizon:
            raise ValueError(
                f"--ema_decay {self.decay} averages over about {horizon} optimizer steps, but this run has only "
                f"{state.max_steps}: the saved model would lean on the first weights. Lower --ema_decay (e.g. "
                f"{1 - 10 / max(state.max_steps, 10):.3g}) or set it to 0 to keep the last weights"
            )
        self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        if self.resume_from:  # run_folder only resumes checkpoints of an averaging recipe that hold the average
            self.average.module.load_state_dict(load_file(Path(self.resume_from) / self.FILE_NAME))
            self.average.n_averaged.fill_(max(1, state.global_step))

    def on_step_end(self, args, state, control, model=None, **kwargs) -> None:
        self.average.update_parameters(model)
        self._save_if_checkpoint_follows(args, state, control)  # save_strategy "steps"

    def on_epoch_end(self, args, state, control, **kwargs) -> None:
        self._save_if_checkpoint_follows(args, state, control)  # save_strategy "epoch"

    def _save_if_checkpoint_follows(self, args, state, control) -> None:
        # DefaultFlowCallback, which runs before this callback, has decided whether a checkpoint follows.
        if control.should_save and args.should_save:  # the processes that write checkpoints
            folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            save_file({k: v.contiguous() for k, v in self.average.module.state_dict().items()}, folder / self.FILE_NAME)

    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.average.module.state_dict())
