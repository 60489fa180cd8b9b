"""The server's command line (`python app.py`, a Space's app.py): options, login, and `main`, which builds the demo
and serves it with the upload hardening of `uploads`."""

import argparse
import ipaddress
import logging
import os
import signal
from pathlib import Path

from ..errors import Esc50HfError, exit_on_user_error
from ..inference.backends import BACKENDS
from ..inference.classifier import DEFAULT_MAX_BATCH_SIZE, SoundClassifier, resolve_model
from ..model.audio_io import AudioLimits
from ..paths import DEFAULT_MODEL_DIR, EXAMPLES_DIR
from .app import DEFAULT_KEEP_UPLOADS, build_demo
from .live import DEFAULT_MAX_LIVE_STREAMS
from .memory import cap_malloc_arenas
from .refusals import refusing_app_kwargs
from .uploads import UploadBudget, UploadJanitor, private_upload_folder, refuse_url_downloads

logger = logging.getLogger(__name__)

AUTH_ENV = "ESC50_AUTH"  # "user:password", the same as --auth


DEFAULT_CONCURRENCY = 4


DEFAULT_MAX_QUEUE = 1000


DEFAULT_MAX_UPLOAD_MB = 2048.0


LOCAL_HOSTS = ("localhost",)


class ServerOptionError(Esc50HfError, ValueError):
    """A serving option that cannot work as given (e.g. a login without a password)."""


def build_parser(default_model: str | Path | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve the ESC-50 classifier as a Gradio web demo and REST API.")
    parser.add_argument("--model", default=None, help=f"model folder or Hub id (default: {default_model})")
    parser.add_argument("--backend", default="torch", choices=BACKENDS)
    parser.add_argument(
        "--host", default=None, help="interface to bind (default: $GRADIO_SERVER_NAME, else 127.0.0.1: local only)"
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument(
        "--auth",
        default=None,
        metavar="USER:PASSWORD",
        help=f"require this login (default: ${AUTH_ENV}; none). Use it on any non-local address.",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests decoded at once; their windows share forward passes (default: {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=DEFAULT_MAX_QUEUE,
        help=f"requests waiting at most; more get HTTP 503 (default: {DEFAULT_MAX_QUEUE})",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help=f"most windows per shared forward pass (default: {DEFAULT_MAX_BATCH_SIZE})",
    )
    parser.add_argument(
        "--keep-uploads",
        type=float,
        default=DEFAULT_KEEP_UPLOADS,
        help=f"seconds an upload is kept before it is deleted (default: {DEFAULT_KEEP_UPLOADS:g})",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"most disk all uploads together may use; past it: HTTP 413 (default: {DEFAULT_MAX_UPLOAD_MB:g})",
    )
    parser.add_argument("--max-seconds", type=float, default=AudioLimits.max_seconds, help="longest input, seconds")
    parser.add_argument("--max-mb", type=float, default=AudioLimits.max_bytes / 2**20, help="largest upload, MiB")
    parser.add_argument(
        "--max-live-streams",
        type=int,
        default=DEFAULT_MAX_LIVE_STREAMS,
        help=f"live microphone streams at once; one more is refused with a message; 0: no Live tab "
        f"(default: {DEFAULT_MAX_LIVE_STREAMS})",
    )
    parser.add_argument("--no-examples", action="store_true", help="do not show the example clips")
    parser.add_argument(
        "--no-unknown",
        action="store_true",
        help="never answer 'not one of the known sounds' (default: when the unknown score, docs/scores.md, is below "
        "the model's fitted unknown_threshold)",
    )
    return parser


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """The login the server requires, from `--auth` or `$ESC50_AUTH`.

    Args:
        value (`str`, *optional*): `"user:password"`; `None` or empty: no login.

    Returns:
        `tuple[str, str]` or `None`: `(user, password)`, or `None` for no login.

    Raises:
        `ServerOptionError`: `value` is not `USER:PASSWORD` with both parts non-empty.
    """
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not (user and colon and password):
        raise ServerOptionError(f"--auth / ${AUTH_ENV} must be USER:PASSWORD with both parts non-empty.")
    return user, password


def is_local_address(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: only localhost is known to be local
        return False


def main(
    argv: list[str] | None = None,
    default_model: str | Path | None = DEFAULT_MODEL_DIR,
    examples_dir: Path | None = EXAMPLES_DIR,
) -> int:
    """`python app.py`: loads the model and serves the demo until stopped (Ctrl+C, SIGTERM); returns the exit status.

    A model that cannot be loaded or a malformed login ends the process with the message alone on stderr (as this
    command has always answered, without the `error: ` of `esc50-hf`) and exit status 1.

    Args:
        argv (`list[str]`, *optional*): The command line (default: `sys.argv[1:]`).
        default_model (`str` or `Path`, *optional*): The model without `--model` (default: the checkout's
            `models/esc50-mel-cnn`).
        examples_dir (`Path`, *optional*): Example clips the page offers (default: the checkout's `examples/`).
    """
    args = build_parser(default_model).parse_args(argv)
    return exit_on_user_error(_serve, args, default_model, examples_dir, prefix="")


def _serve(args: argparse.Namespace, default_model: str | Path | None, examples_dir: Path | None) -> int:
    cap_malloc_arenas()  # before the model's and Gradio's threads: see `memory`
    model = resolve_model(args.model, default_model)
    limits = AudioLimits(max_seconds=args.max_seconds, max_bytes=int(args.max_mb * 2**20))
    classifier = SoundClassifier.load_or_explain(
        model, args.backend, limits=limits, dynamic_batching=True, max_batch_size=args.max_batch
    )
    auth = parse_auth(args.auth if args.auth is not None else os.environ.get(AUTH_ENV))
    host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    if auth is None and not is_local_address(host):
        logger.warning(
            "Serving on %s without a login: anyone who reaches this address can use the app. "
            "Pass --auth USER:PASSWORD (or set %s) unless that is what you want.",
            host,
            AUTH_ENV,
        )
    # SIGTERM (what `docker stop`, a Space restart or `kill` send) stops the server like Ctrl+C: Gradio closes
    # it and deletes its cache, then the process exits normally and the upload folder is removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    refuse_url_downloads()
    upload_folder = private_upload_folder()  # before the demo: its components read it
    demo = build_demo(
        classifier,
        None if args.no_examples else examples_dir,
        keep_uploads=args.keep_uploads,
        unknown_answer=not args.no_unknown,
        max_live_streams=args.max_live_streams,
    )

    def kept() -> set[str]:  # the example clips' copies: not uploads
        return {path for block in demo.blocks.values() for path in getattr(block, "keep_in_cache", ())}

    budget = UploadBudget(upload_folder, max_bytes=int(args.max_upload_mb * 2**20), keep=kept)
    UploadJanitor(
        upload_folder,
        max_age=args.keep_uploads,
        interval=min(60.0, max(1.0, args.keep_uploads / 4)),
        keep=kept,
        uploading=lambda: budget.in_progress > 0,
        remembered=demo.upload_file_set,
    )
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.max_queue)
    demo.launch(
        server_name=args.host,  # None: Gradio reads GRADIO_SERVER_NAME, else 127.0.0.1
        server_port=args.port,  # None: GRADIO_SERVER_PORT, else 7860
        auth=auth,
        max_file_size=limits.max_bytes,
        show_error=True,  # Gradio's own refusals (e.g. a path that was not uploaded) say why; ours are gr.Error
        allowed_paths=[str(examples_dir)] if examples_dir and not args.no_examples else None,
        app_kwargs=refusing_app_kwargs(budget),  # 4xx and a sentence: uploads past the cap, unknown endpoints, ...
    )
    return 0


__all__ = ["ServerOptionError", "build_parser", "is_local_address", "main", "parse_auth"]
