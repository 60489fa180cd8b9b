"""Knowledge distillation: the student learns from the labels and from the averaged predictions of trained teachers.

    python train.py --train_folds 1 2 3 --validation_fold 4 --teacher_models runs/a runs/b

The teachers are finished model folders (or Hub ids) of this project. A teacher must not have trained on a
fold the student does not train on: what it learned there would reach the student's score (for fold 5,
the test fold, that would be a leak). Each teacher sees the same augmented batch as the student (its own
normalization applied), in evaluation mode and without gradients; their probabilities at temperature `T`
are averaged and the student's loss becomes `(1 - w) * label loss + w * T^2 * KL(teachers || student)`.
A teacher's forward pass per batch is part of the student's training time; its own training is not (report
it beside the student's).
"""

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Trainer

from ..errors import Esc50HfError
from ..model.configuration_esc50_cnn import UNCALIBRATED
from ..model.feature_extraction_esc50 import Esc50FeatureExtractor
from ..model.modeling_esc50_cnn import Esc50CnnForAudioClassification
from .arguments import ModelArguments
from .model_folder import MODEL_FILES, ModelFolder, ModelFolderError, local_model_folder
from .recipe import fingerprint
from .run_folder import stored_recipe_state

FEATURE_KEYS = (*ModelArguments.FEATURE_FIELDS, "clip_seconds")


class TeacherError(Esc50HfError, ValueError):
    """A teacher that cannot teach this run; the message names the teacher and what to change."""


@dataclass
class Teacher:
    """One loaded teacher: its network and the normalization it was trained with."""

    name: str  # as given: a folder or a Hub id
    recipe_fingerprint: str  # of the recipe it was trained with (`training_config.json`)
    weights_sha256: str  # of its `model.safetensors`: a teacher retrained in place is another teacher
    model: Esc50CnnForAudioClassification
    mean: float
    std: float

    def record(self) -> dict[str, str]:
        """What a student records of this teacher (checkpoints and `metrics.json`)."""
        return {
            "model": self.name,
            "recipe_fingerprint": self.recipe_fingerprint,
            "weights_sha256": self.weights_sha256,
        }

    def logits(self, inputs: torch.Tensor, student: Esc50FeatureExtractor) -> torch.Tensor:
        """The teacher's logits for `inputs`, features normalized the student's way (`(log_mel - mean) / std`)."""
        return self.model(input_values=(inputs * student.std + student.mean - self.mean) / self.std).logits


def teacher_folder(name: str) -> Path:
    """The local folder of the teacher `name`: a model folder, or the Hub repository `name` downloaded.

    Args:
        name (`str`): A folder written by `train.py`, or a Hub id (`OWNER/NAME`).

    Raises:
        `TeacherError`: neither a folder nor a Hub model that could be downloaded.
    """
    try:
        return local_model_folder(name)
    except ModelFolderError as error:
        raise TeacherError(f"--teacher_models: {error}") from None


def load_teachers(
    names: list[str], validation_fold: int, train_folds: list[int], student: Esc50FeatureExtractor
) -> list[Teacher]:
    """Loads and checks the teachers of a run that trains on `train_folds` and validates on `validation_fold`.

    Args:
        names (`list[str]`): Model folders or Hub ids; `{validation_fold}` in a name is replaced by the fold (one
            teacher per fold under `--cv`).
        validation_fold (`int`): The student's validation fold.
        train_folds (`list[int]`): The student's training folds; every teacher must have trained on these only.
        student (`Esc50FeatureExtractor`): The student's features (a teacher must compute the same ones).

    Raises:
        `TeacherError`: a teacher is missing, was trained on another fold, or computes other features.
    """
    teachers = []
    for name in names:
        name = name.replace("{validation_fold}", str(validation_fold))
        folder = teacher_folder(name)
        finished = ModelFolder(folder)
        if not finished.complete:
            raise TeacherError(
                f"--teacher_models: {folder} holds no finished model written by train.py ({', '.join(MODEL_FILES)}), "
                "so what it is and the folds it trained on are unknown"
            )
        recipe = finished.recipe
        unseen = finished.folds_beyond(train_folds)
        if unseen:
            raise TeacherError(
                f"--teacher_models: {folder} trained on folds {finished.esc50_folds}, which include fold(s) {unseen} "
                f"that this run does not train on (it trains on {train_folds} and validates on {validation_fold}): "
                "what the teacher learned there would reach the student's score. Use teachers trained on this run's "
                "training folds only."
            )
        extractor = Esc50FeatureExtractor.from_pretrained(folder)
        differences = [
            f"{key}: teacher {getattr(extractor, key)}, student {getattr(student, key)}"
            for key in FEATURE_KEYS
            if getattr(extractor, key) != getattr(student, key)
        ]
        if differences:
            raise TeacherError(
                f"--teacher_models: {folder} computes other features than this run ({'; '.join(differences)}); "
                "a teacher must read the same log-mels as the student"
            )
        # raw logits: the distillation temperature, not the teacher's calibration, softens them
        model = Esc50CnnForAudioClassification.from_pretrained(folder, **UNCALIBRATED).eval().requires_grad_(False)
        digest = finished.weights_digest
        teachers.append(Teacher(name, fingerprint(recipe), digest, model, float(extractor.mean), float(extractor.std)))
    return teachers


def changed_teachers(recorded: list[dict[str, str]] | None, teachers: list[Teacher]) -> list[str]:
    """The names of `teachers` whose weights differ from what a student recorded of them (a checkpoint's state or its
    `metrics.json`); none when nothing was recorded (a student of a version before the digests).

    Args:
        recorded (`list[dict[str, str]]`, *optional*): `Teacher.record()` entries, as the student stored them.
        teachers (`list[Teacher]`): The teachers as loaded now.
    """
    before = {entry["model"]: entry.get("weights_sha256") for entry in recorded or []}
    return [
        teacher.name
        for teacher in teachers
        if before.get(teacher.name) is not None and before[teacher.name] != teacher.weights_sha256
    ]


def check_resumed_teachers(checkpoint: str | Path, teachers: list[Teacher]) -> None:
    """Refuses to resume a student from `checkpoint` when its teachers are not the ones it started with (same names,
    same weights): a teacher retrained or replaced in place would silently change what the rest of the run learns.

    Raises:
        `TeacherError`: names each teacher that changed, and what to do.
    """
    changed = changed_teachers((stored_recipe_state(Path(checkpoint)) or {}).get("teachers"), teachers)
    if changed:
        raise TeacherError(
            f"--teacher_models: {checkpoint} was trained with other weights of {', '.join(changed)} than those "
            "teachers hold now (retrained or replaced since): resuming would change the teachers in the middle of "
            "the run. Restore those teachers, or start the student again (another --output_dir, or "
            "--overwrite_output_dir)."
        )


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: list[torch.Tensor], temperature: float
) -> torch.Tensor:
    """`T^2 * KL(mean of the teachers' softmax(z / T) || softmax(student / T))`, averaged over the batch."""
    targets = torch.stack([torch.softmax(logits.float() / temperature, dim=-1) for logits in teacher_logits]).mean(0)
    log_probabilities = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    return torch.nn.functional.kl_div(log_probabilities, targets, reduction="batchmean") * temperature**2


class DistillationTrainer(Trainer):
    """`Trainer` whose training loss mixes the model's own loss with `distillation_loss` to its teachers.

    Evaluation reports the model's own loss only, so eval losses compare with runs without teachers.

    Args:
        teachers (`list[Teacher]`): From `load_teachers`.
        weight (`float`): Share of the distillation term in the loss, in (0, 1].
        temperature (`float`): Softmax temperature of both sides.
    """

    def __init__(self, *args, teachers: list[Teacher], weight: float, temperature: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.teachers, self.weight, self.temperature = teachers, weight, temperature
        for teacher in self.teachers:
            teacher.model.to(self.args.device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            # accelerate autocasts the student's forward (bf16) by patching it; a teacher's needs the context
            with torch.no_grad(), self.accelerator.autocast():
                student = self.processing_class  # its normalization is set from the training folds
                teacher_logits = [teacher.logits(inputs["input_values"], student) for teacher in self.teachers]
            taught = distillation_loss(outputs.logits, teacher_logits, self.temperature)
            loss = (1.0 - self.weight) * loss + self.weight * taught
        return (loss, outputs) if return_outputs else loss


__all__ = ["DistillationTrainer", "Teacher", "TeacherError", "distillation_loss", "load_teachers"]
