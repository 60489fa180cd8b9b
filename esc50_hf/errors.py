"""The library's one error convention: what the user got wrong raises a subclass of `Esc50HfError`.

Library code raises; it never ends the process. Front ends (`esc50-hf`, `train.py`, `python app.py`) catch
`USER_ERRORS` and answer with the message as one line on stderr and a non-zero exit status (see
`exit_on_user_error`); anything else that escapes them is a bug and keeps its traceback. Each subclass
lives beside the code that raises it (`Esc50DataError` in `data/esc50.py`, `LabelledDataError` in
`data/labelled.py`, `ModelLoadError` in `inference/classifier.py`, ...) and keeps a built-in base (`ValueError`,
`RuntimeError`, `FileExistsError`) where callers catch that.

`AudioInputError` (bad audio) is the one user error outside this hierarchy: it lives in `model/audio_io.py`, which
ships inside every saved model folder and must not import the rest of the package. `USER_ERRORS` names both; it is
resolved on first use, so that importing this module stays free of torch.

Standard library only.
"""

from collections.abc import Callable
from typing import Any


class Esc50HfError(Exception):
    """An error in the user's input or environment whose message says what to do.

    The message is one line, in the user's terms (the option, file or folder to change), so that a front end can
    show it as it is.
    """


class OutputExistsError(Esc50HfError, FileExistsError):
    """A folder the command writes must be new or empty, and is not; nothing was written."""


def user_errors() -> tuple[type[Exception], ...]:
    """`(Esc50HfError, AudioInputError)`: what a front end answers with a message; imports audio_io (and torch)
    only when called."""
    from .model.audio_io import AudioInputError

    return (Esc50HfError, AudioInputError)


def __getattr__(name: str) -> Any:
    if name == "USER_ERRORS":  # the same tuple as a module constant, resolved on first use
        return user_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        if isinstance(error, user_errors()):
            raise SystemExit(f"{prefix}{error}") from None
        raise


__all__ = ["USER_ERRORS", "Esc50HfError", "OutputExistsError", "exit_on_user_error", "user_errors"]  # noqa: F822 (USER_ERRORS: from __getattr__)
