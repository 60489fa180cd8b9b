"""The `esc50-hf` command line; each subcommand lives in `esc50_hf/commands/<name>.py`."""

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable
from typing import Any

from . import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esc50-hf", description="ESC-50 environmental-sound classifier")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda info: info.name):
        importlib.import_module(f"{commands.__name__}.{module_info.name}").register(subparsers)
    return parser


def exit_on_user_error(function: Callable[..., Any], *args: Any, prefix: str = "error: ") -> Any:
    """Runs a front end's `function(*args)`; a user error (`esc50_hf.errors.USER_ERRORS`) ends the process with its
    message as one line on stderr and exit status 1, without a traceback.

    The one place where the library's errors become an exit: `esc50-hf` (every subcommand), `train.py` and
    `python app.py` go through it. Any other exception is a bug and keeps its traceback. The `SystemExit` carries the
    line, so a caller in the same process (a test) sees it too.

    Args:
        function (`Callable`): The front end's work; its return value (an exit status) is returned.
        *args: Passed to `function`.
        prefix (`str`, *optional*, defaults to `"error: "`): Put before the message.
    """
    try:
        return function(*args)
    except Exception as error:
        from .errors import USER_ERRORS  # only now: it imports torch, which some commands never need

        if isinstance(error, USER_ERRORS):
            raise SystemExit(f"{prefix}{error}") from None
        raise


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import register_auto_classes

    register_auto_classes()  # the handlers load saved folders through the Auto classes

    return exit_on_user_error(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
