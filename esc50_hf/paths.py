"""Where things live in a checkout: the one place the default model folder and the example clips are named.

Standard library only, so that scripts (the benchmarks) can read it without importing torch.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"  # the Jinja templates of the model card and the dataset card (package data)
DEFAULT_MODEL_DIR = REPO_ROOT / "models" / "esc50-mel-cnn"  # the shipped model; the app, CLI and benchmarks' default
EXAMPLES_DIR = REPO_ROOT / "examples"  # real ESC-50 fold-5 clips for the demo, with their attribution.csv
WEB_DIR = REPO_ROOT / "web"  # the static browser page (HTML + JS) that `esc50-hf web` completes with model and runtime

__all__ = ["DEFAULT_MODEL_DIR", "EXAMPLES_DIR", "PACKAGE_DIR", "REPO_ROOT", "TEMPLATES_DIR", "WEB_DIR"]
