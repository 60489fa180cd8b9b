"""`write_space(output, model)`: a folder that is a complete Hugging Face Space for the web demo.

The folder holds what a Gradio Space runs (`python app.py` with `GRADIO_SERVER_NAME=0.0.0.0`):
`README.md` with the Space metadata, `app.py`, `requirements.txt` pinned like this project,
`packages.txt` (FFmpeg's libraries for torchcodec), a copy of the `esc50_hf` package, the
example clips with their attribution, and the model folder (or the Hub id of a published
model). It starts from that folder alone: `cd DIR && python app.py`.
"""

import importlib.metadata
import shutil
from pathlib import Path

import gradio

from ..errors import OutputExistsError
from ..inference.classifier import ModelLoadError
from ..model.audio_io import DEFAULT_LIMITS, MAX_CHANNELS
from ..model.labels import model_labels
from ..paths import EXAMPLES_DIR
from ..publish import is_hub_id
from .app import DEFAULT_KEEP_UPLOADS, read_examples
from .server import DEFAULT_MAX_QUEUE

PACKAGE_DIR = Path(__file__).resolve().parents[1]
SPACE_MODEL_DIR = "models/esc50-mel-cnn"  # where a local model folder goes inside the Space
PYTHON_VERSION = "3.11"
# Models of this project are trained on ESC-50 or start from a model that was, and the example clips are ESC-50's:
# CC BY-NC 3.0 (the code itself is MIT).
SPACE_LICENSE = "cc-by-nc-3.0"

APP_TEMPLATE = '''"""Hugging Face Space: a sound classifier's web demo and REST API (written by `esc50-hf space`).

Run locally with `python app.py`; `python app.py --help` lists the serving options.
"""

import sys
from pathlib import Path

from esc50_hf.serving.server import main

HERE = Path(__file__).resolve().parent
MODEL = {model}

if __name__ == "__main__":
    sys.exit(main(default_model=MODEL, examples_dir=HERE / "examples"))
'''

README_TEMPLATE = """---
title: {title}
emoji: 🔊
colorFrom: indigo
colorTo: green
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
python_version: "{python_version}"
license: {license}
{models}pinned: false
---

# {title}

Upload or record a sound; the app answers with the top-5 of the model's {labels_text} and the best class of
each 5-s window. The same function is a REST endpoint, `/gradio_api/call/predict` (see "Use via API" at the
bottom of the page).

Model: {model_text}; its model card says what it was trained on. Models of esc50-hf learn from ESC-50
(K. J. Piczak, 2015, CC BY-NC 3.0) or start from one that did: not for commercial use.{examples_text}

Limits of the public app: {max_minutes:g} minutes or {max_mib:g} MiB per upload, up to {max_channels}
channels, {min_khz:g}-{max_khz:g} kHz; uploads are deleted after {keep_minutes:g} minutes; requests beyond the
queue of {max_queue} get HTTP 503. Set the Space secret `ESC50_AUTH=user:password` to require a login.

Written by `esc50-hf space`; publish it with

    hf upload OWNER/SPACE_NAME . --repo-type space
"""


WEB_README_TEXT = """
## In the browser, without this server

`web/` is the same model as a static page (`esc50-hf web`): ONNX Runtime Web classifies files or the microphone on
the visitor's device. Publish it as a static Space of its own (`sdk: static`, `app_file: index.html`), or serve it
with any static file server: `python -m http.server -d web`.
"""


def write_space(output: Path, model: str | Path, overwrite: bool = False, web: bool = False) -> Path:
    """Writes the Space folder `output` for `model` (a local model folder, copied in, or a Hub id).

    Args:
        output (`Path`): The folder to write; must not exist or be empty unless `overwrite`.
        model (`str` or `Path`): A saved model folder (with `config.json`) or a Hub model id.
        overwrite (`bool`, *optional*, defaults to `False`): Replace an existing non-empty `output`.
        web (`bool`, *optional*, defaults to `False`): Also write the static browser page (`esc50-hf web`) into
            `web/`; needs a local model folder.

    Returns:
        `Path`: `output`.

    Raises:
        `OutputExistsError`: `output` is not empty and `overwrite` is not set.
        `ModelLoadError`: `model` is neither a saved model folder nor a Hub model id.
    """
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{output} exists and is not empty; pass --overwrite to replace it.")
        shutil.rmtree(output)
    model_path = Path(model)
    is_folder = model_path.is_dir()
    if is_folder and not (model_path / "config.json").is_file():
        raise ModelLoadError(f"{model_path} is not a saved model folder (no config.json).")
    if not is_folder and not is_hub_id(str(model)):
        raise ModelLoadError(f"{model} is neither a model folder nor a Hub model id (OWNER/NAME).")
    if web and not is_folder:
        raise ModelLoadError(f"--web exports the model to ONNX and needs a local model folder, not the Hub id {model}.")
    output.mkdir(parents=True, exist_ok=True)

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE_DIR, output / "esc50_hf", ignore=ignore)  # symlinks (the card template) resolved
    labels = _labels_of(model)
    examples = [row for row in read_examples(EXAMPLES_DIR) if labels is None or row["category"] in labels]
    if examples:  # only clips of classes the model knows
        shutil.copytree(EXAMPLES_DIR, output / "examples", ignore=ignore)
    if is_folder:
        shutil.copytree(model_path, output / SPACE_MODEL_DIR, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
        model_literal, model_text, models = f'HERE / "{SPACE_MODEL_DIR}"', f"`{SPACE_MODEL_DIR}` in this Space", ""
    else:
        model_literal, model_text = repr(str(model)), f"[{model}](https://huggingface.co/{model})"
        models = f"models:\n- {model}\n"
    (output / "app.py").write_text(APP_TEMPLATE.format(model=model_literal))
    (output / "requirements.txt").write_text("\n".join(pinned_requirements()) + "\n")
    (output / "packages.txt").write_text("ffmpeg\n")
    (output / "README.md").write_text(
        README_TEMPLATE.format(
            title=f"{Path(str(model).rstrip('/')).name}: sound classifier",
            labels_text=f"{len(labels)} classes ({', '.join(labels[:12])}{', ...' if len(labels) > 12 else ''})"
            if labels
            else "classes (those of its config.json)",
            examples_text=" The example clips are ESC-50 clips; `examples/README.md` credits each one."
            if examples
            else "",
            gradio_version=gradio.__version__,
            python_version=PYTHON_VERSION,
            license=SPACE_LICENSE,
            models=models,
            model_text=model_text,
            max_minutes=DEFAULT_LIMITS.max_seconds / 60,
            max_mib=DEFAULT_LIMITS.max_bytes / 2**20,
            max_channels=MAX_CHANNELS,
            min_khz=DEFAULT_LIMITS.min_rate / 1000,
            max_khz=DEFAULT_LIMITS.max_rate / 1000,
            keep_minutes=DEFAULT_KEEP_UPLOADS / 60,
            max_queue=DEFAULT_MAX_QUEUE,
        )
    )
    if web:
        from .web import write_web

        write_web(output / "web", model_path)
        with (output / "README.md").open("a") as readme:
            readme.write(WEB_README_TEXT)
    return output


def _labels_of(model: str | Path) -> tuple[str, ...] | None:
    """The model's labels from its config.json; `None` for a Hub model that cannot be reached now."""
    from transformers import AutoConfig

    try:
        return model_labels(AutoConfig.from_pretrained(str(model)))
    except (OSError, ValueError) as error:
        if Path(model).is_dir():
            raise ModelLoadError(f"Cannot read the labels of {model}: {error}") from error
        return None


def pinned_requirements() -> list[str]:
    """This project's runtime dependencies, pinned as in its `pyproject.toml` (read from the installed metadata)."""
    requirements = importlib.metadata.requires("esc50-hf") or []
    return [requirement for requirement in requirements if "extra ==" not in requirement]


__all__ = ["pinned_requirements", "write_space"]
