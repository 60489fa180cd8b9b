"""The `esc50-hf` command line; each subcommand lives in `esc50_hf/commands/<name>.py`."""

import argparse
import importlib
import pkgutil
import sys

from . import commands
from .errors import exit_on_user_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esc50-hf", description="ESC-50 environmental-sound classifier")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda info: info.name):
        importlib.import_module(f"{commands.__name__}.{module_info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import register_auto_classes

    register_auto_classes()  # the handlers load saved folders through the Auto classes

    return exit_on_user_error(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
