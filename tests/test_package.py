"""The installed package: importing it stays off the network, and the console script exists."""

import os
import shutil
import subprocess
import sys

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
    for command in ("evaluate", "predict", "baseline", "export-onnx"):
        assert command in completed.stdout
