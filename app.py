"""Serve the web demo and REST API: `python app.py [--model DIR_OR_HUB_ID] [--host 127.0.0.1] [--port 7860]`.

The logic is in `esc50_hf/demo.py`; the default model is `models/esc50-mel-cnn` in this checkout.
"""

import sys
from pathlib import Path

from esc50_hf.demo import main

if __name__ == "__main__":
    sys.exit(main(default_model=Path(__file__).resolve().parent / "models" / "esc50-mel-cnn"))
