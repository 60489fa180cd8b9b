"""The installed package: importing it stays off the network, the console script exists, wheels are complete."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Any attempt to open a network connection during the import fails loudly.
NO_NETWORK_IMPORT = """
import socket

def refuse(*args, **kwargs):
    raise AssertionError(f"network access during import: {args}")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import esc50_hf
from esc50_hf import Esc50CnnForAudioClassification, Esc50FeatureExtractor, load_esc50
print("imported", esc50_hf.__version__)
"""


@pytest.mark.slow
def test_import_does_not_touch_the_network(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")} | {"HF_HOME": str(tmp_path)}
    completed = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_IMPORT], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "imported 0.1.0" in completed.stdout


def test_console_script_lists_every_subcommand():
    script = shutil.which("esc50-hf", path=os.path.dirname(sys.executable))
    assert script is not None
    completed = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120, check=True)
    for command in ("evaluate", "predict", "baseline", "export-onnx", "card"):
        assert command in completed.stdout


TEMPLATES = ("model_card.md", "dataset_card.md")


def test_wheel_carries_the_metric_modules_and_the_card_templates(tmp_path):
    """Outside a checkout, training still needs the `evaluate` metric scripts and the card template."""
    repo = Path(__file__).resolve().parents[1]
    build = [sys.executable, "-m", "pip", "wheel", str(repo), "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path)], check=True, timeout=300, capture_output=True)
    (wheel,) = tmp_path.glob("esc50_hf-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        templates = {name: archive.read(f"esc50_hf/templates/{name}").decode() for name in TEMPLATES}
    assert {"esc50_hf/evaluation/metrics/accuracy/accuracy.py", "esc50_hf/evaluation/metrics/f1/f1.py"} <= names
    assert templates == {name: (repo / "esc50_hf" / "templates" / name).read_text() for name in TEMPLATES}


LIGHT_IMPORT = """
import sys
import esc50_hf
from esc50_hf.cli import build_parser
build_parser()
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers", "datasets", "gradio"})
print("heavy:", heavy)
"""

REGISTERED_ON_IMPORT = """
import sys
import numpy as np
{first}
import esc50_hf
classifier = esc50_hf.audio_pipeline(sys.argv[1])  # no trust_remote_code: the registered classes
print(type(classifier.model).__module__, type(classifier.feature_extractor).__module__)
print(len(classifier(np.zeros(22050, dtype=np.float32), top_k=3)))
"""


def test_import_and_cli_parser_load_no_heavy_library():
    """`esc50-hf --help` stays fast: neither the package nor the parsers import torch, transformers or datasets."""
    completed = subprocess.run(
        [sys.executable, "-c", LIGHT_IMPORT], capture_output=True, text=True, timeout=120, check=True
    )
    assert "heavy: []" in completed.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "first",
    [
        "import esc50_hf",  # before transformers: registered once transformers' model code has loaded
        "import transformers.modeling_utils; import esc50_hf",  # after: registered at once
        "from esc50_hf.model.modeling_esc50_cnn import Esc50CnnForAudioClassification",  # a submodule directly
    ],
)
def test_import_registers_the_auto_classes(saved_model_dir, tmp_path, first):
    folder = tmp_path / "model"
    shutil.copytree(saved_model_dir, folder)
    for code in folder.glob("*.py"):
        code.unlink()  # only the registration can resolve the classes now
    completed = subprocess.run(
        [sys.executable, "-c", REGISTERED_ON_IMPORT.format(first=first), str(folder)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    modules, count = completed.stdout.strip().splitlines()[-2:]
    assert modules == "esc50_hf.model.modeling_esc50_cnn esc50_hf.model.feature_extraction_esc50" and count == "3"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("owner/name", True), ("ab/c-d.e", True), ("./x/y", False), ("x/y/z", False), ("x/.y", False),
     ("x--y/z", False), ("gpt2", False), ("models/esc50-mel-cnn/", False)],
)  # fmt: skip
def test_one_hub_id_rule_for_models_and_datasets(name, expected):
    """Models (`--model`, teachers, the Space) and datasets (`--data_dir`) tell a Hub id from a path the same way."""
    from esc50_hf.publish import is_hub_id

    assert is_hub_id(name) is expected


LAZY_SUBPACKAGES = """
import sys
import esc50_hf.evaluation
import esc50_hf.inference
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "transformers", "datasets", "evaluate"})
print("heavy:", heavy)
from esc50_hf.inference import SoundClassifier
from esc50_hf.evaluation import evaluator_compatible, score_predictions
print(SoundClassifier.__module__, evaluator_compatible.__module__, score_predictions.__module__)
"""


@pytest.mark.slow
def test_the_old_import_paths_of_inference_and_evaluation_still_work_and_stay_lazy():
    """`from esc50_hf.inference import SoundClassifier` (and evaluation's names) as before the layers; importing
    the subpackages alone loads no heavy library."""
    completed = subprocess.run(
        [sys.executable, "-c", LAZY_SUBPACKAGES], capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    heavy, modules = completed.stdout.strip().splitlines()[-2:]
    assert heavy == "heavy: []"
    assert modules == "esc50_hf.inference.classifier esc50_hf.evaluation.evaluator esc50_hf.evaluation.scoring"


@pytest.mark.parametrize("subpackage", ["esc50_hf.inference", "esc50_hf.evaluation"])
def test_each_re_exported_name_is_its_modules_own_and_covers_every_all(subpackage):
    import importlib

    package = importlib.import_module(subpackage)
    lazy = {name: module for module, names in package._EXPORTS.items() for name in names.split()}
    assert sorted(lazy) == package.__all__
    for name, module in lazy.items():
        assert getattr(package, name) is getattr(importlib.import_module(f"{subpackage}.{module}"), name), name
    for module in package._EXPORTS:
        declared = getattr(importlib.import_module(f"{subpackage}.{module}"), "__all__", [])
        assert set(declared) <= set(lazy), (module, set(declared) - set(lazy))
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018
