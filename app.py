"""Serve the web demo and REST API: `python app.py [--model DIR_OR_HUB_ID] [--host HOST] [--port PORT]`.

The logic is in `esc50_hf/serving/` (`server.py`: options and `main`; `app.py`: the page); the default model
is `models/esc50-mel-cnn` in this checkout, the example clips are in `examples/`. `python app.py --help` lists the
serving options.
"""

import sys

from esc50_hf.serving.server import main

if __name__ == "__main__":
    sys.exit(main())  # the checkout's models/esc50-mel-cnn and examples/ (esc50_hf/paths.py)
