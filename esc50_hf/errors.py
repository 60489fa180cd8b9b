"""The library's one error convention: what the user got wrong raises a subclass of `Esc50HfError`.

Library code raises; it never ends the process. Front ends (`esc50-hf`, `train.py`, `python app.py`) catch
`USER_ERRORS` and answer with the message as one line on stderr and a non-zero exit status (see
`esc50_hf.cli.exit_on_user_error`); anything else that escapes them is a bug and keeps its traceback. Each subclass
lives beside the code that raises it (`Esc50DataError` in `data/esc50.py`, `ModelLoadError` in
`inference/classifier.py`, ...) and keeps a built-in base (`ValueError`, `RuntimeError`, `FileExistsError`) where
callers catch that.

`AudioInputError` (bad audio) is the one user error outside this hierarchy: it lives in `model/audio_io.py`, which
ships inside every saved model folder and must not import the rest of the package. `USER_ERRORS` names both; it is
resolved on first use, so that importing this module stays free of torch.

Standard library only.
"""

from typing import Any


class Esc50HfError(Exception):
    """An error in the user's input or environment whose message says what to do.

    The message is one line, in the user's terms (the option, file or folder to change), so that a front end can
    show it as it is.
    """


class OutputExistsError(Esc50HfError, FileExistsError):
    """A folder the command writes must be new or empty, and is not; nothing was written."""


def __getattr__(name: str) -> Any:
    # `USER_ERRORS = (Esc50HfError, AudioInputError)`, importing audio_io (and torch) only when a front end asks.
    if name == "USER_ERRORS":
        from .model.audio_io import AudioInputError

        return (Esc50HfError, AudioInputError)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["USER_ERRORS", "Esc50HfError", "OutputExistsError"]  # noqa: F822 (USER_ERRORS: from __getattr__)
