"""`python -m esc50_hf`: the `esc50-hf` command line (also under `accelerate launch -m esc50_hf ...`)."""

import sys

from .cli import main

sys.exit(main())
