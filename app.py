"""Serve the web demo and REST API: `python app.py [--model DIR_OR_HUB_ID] [--host HOST] [--port PORT]`.

The logic is in `esc50_hf/demo.py`; the default model is `models/esc50-mel-cnn` in this checkout,
the example clips are in `examples/`. `python app.py --help` lists the serving options.
"""

import sys
from pathlib import Path

from esc50_hf.demo import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.exit(main(default_model=HERE / "models" / "esc50-mel-cnn", examples_dir=HERE / "examples"))
