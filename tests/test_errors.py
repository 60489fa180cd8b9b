"""One error convention: library code raises an `Esc50HfError` (or `AudioInputError`) saying what to do; only the
front ends (`esc50-hf`, `train.py`, `python app.py`) turn it into one line on stderr and a non-zero exit status."""

import ast
import io
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

import esc50_hf
from esc50_hf.errors import USER_ERRORS, Esc50HfError

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"
CLI = [sys.executable, "-m", "esc50_hf"]
TRAIN = [sys.executable, str(REPO / "train.py")]
# The only modules that may end the process: the command line's entry points.
EXITING_MODULES = {"errors.py", "cli.py", "__main__.py"}  # errors.exit_on_user_error: the one way a user error exits


# A wrong path for every subcommand and for train.py: the command and the path its one-line error must name. In
# them, {missing} is a path that does not exist (one per case), {model} a saved model, {data} an ESC-50 folder.
WRONG_PATHS = {
    "predict": ([*CLI, "predict", "--model", "{missing}/model", "{model}/clip.wav"], "{missing}/model"),
    "evaluate-model": ([*CLI, "evaluate", "--model", "{missing}/model", "--data-dir", "{data}"], "{missing}/model"),
    "evaluate-data": ([*CLI, "evaluate", "--model", "{model}", "--data-dir", "{missing}/data"], "{missing}/data"),
    "baseline": ([*CLI, "baseline", "--data-dir", "{missing}/data"], "{missing}/data"),
    "card": ([*CLI, "card", "--model", "{missing}/model"], "{missing}/model"),
    "dataset": ([*CLI, "dataset", "--data-dir", "{missing}/data", "--output", "{missing}/out"], "{missing}/data"),
    "export-onnx": ([*CLI, "export-onnx", "--model", "{missing}/model"], "{missing}/model"),
    "space": ([*CLI, "space", "--output", "{missing}/space", "--model", "{missing}/model"], "{missing}/model"),
    "web": ([*CLI, "web", "--output", "{missing}/site", "--model", "{missing}/model"], "{missing}/model"),
    "train-data_dir": (
        [*TRAIN, "--config", str(SMOKE), "--data_dir", "{missing}/data", "--output_dir", "{missing}/out"],
        "{missing}/data",
    ),
    "train-config": ([*TRAIN, "--config", "{missing}/recipe.yaml"], "{missing}/recipe.yaml"),
    "train-features_file": (
        [*TRAIN, "--config", str(SMOKE), "--features_file", "{missing}/f.safetensors", "--output_dir", "{missing}/o"],
        "{missing}/f.safetensors",
    ),
}
# Other wrong inputs answered the same way, run with them.
OTHERS = {
    "predict-input": [*CLI, "predict", "--model", "{model}", "{missing}/clip.wav"],
    "train-config-list": [*TRAIN, "--config", "{missing}.yaml"],  # the file holds a list, not options
}
# Run as a user runs them, each in its own process (seconds each, mostly importing torch): train.py, and one
# `python -m esc50_hf` subcommand for the console entry itself. The other subcommands run in this process through
# `cli.main`, which is all that `python -m esc50_hf` adds to them (`sys.exit(main())`).
IN_ITS_OWN_PROCESS = {"predict", "train-data_dir", "train-config", "train-features_file", "train-config-list"}


def run(command: list[str]) -> subprocess.CompletedProcess:
    """`command` from the checkout's root, as a user runs it (`python -m esc50_hf` then imports this checkout)."""
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=REPO)


def run_in_this_process(command: list[str]) -> subprocess.CompletedProcess:
    """`python -m esc50_hf ARGS` as `cli.main(ARGS)` here, answered as the interpreter would: a `SystemExit` with a
    message prints it on stderr and exits 1; any other exception escapes (the test fails with its traceback)."""
    from transformers.utils import logging as hf_logging

    from esc50_hf.cli import main

    assert command[: len(CLI)] == CLI, command
    stdout, stderr = io.StringIO(), io.StringIO()
    bars = hf_logging.is_progress_bar_enabled()  # `predict` turns transformers' bars off for its own
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            status = main(command[len(CLI) :])
    except SystemExit as exit_:
        status = exit_.code
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if isinstance(status, str):
        stderr.write(f"{status}\n")
        status = 1
    return subprocess.CompletedProcess(command, status or 0, stdout.getvalue(), stderr.getvalue())


def _commands(root: Path, model: Path, data: Path, own_process: bool) -> dict[str, list[str]]:
    """The commands of `WRONG_PATHS` and `OTHERS` that run in their own process (or here), filled in; {missing} is
    `root / name` for each."""
    commands = {name: command for name, (command, _) in WRONG_PATHS.items()} | OTHERS
    return {
        name: [part.format(missing=root / name, model=model, data=data) for part in command]
        for name, command in commands.items()
        if (name in IN_ITS_OWN_PROCESS) == own_process
    }


@pytest.fixture(scope="module")
def wrong_paths_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wrong-paths")
    (root / "train-config-list.yaml").write_text("[1, 2]\n")
    return root


@pytest.fixture(scope="module")
def answers_here(saved_model_dir, esc50_dir, wrong_paths_root) -> dict[str, subprocess.CompletedProcess]:
    commands = _commands(wrong_paths_root, saved_model_dir, esc50_dir, own_process=False)
    return {name: run_in_this_process(command) for name, command in commands.items()}


@pytest.fixture(scope="module")
def answers_in_own_processes(saved_model_dir, esc50_dir, wrong_paths_root) -> dict[str, subprocess.CompletedProcess]:
    """Run side by side, as each mostly imports torch."""
    commands = _commands(wrong_paths_root, saved_model_dir, esc50_dir, own_process=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(commands, pool.map(run, commands.values())))


def answer(request: pytest.FixtureRequest, case: str) -> tuple[subprocess.CompletedProcess, Path]:
    """The answer to the command `case` and the path that stands for {missing} in it."""
    answers = "answers_in_own_processes" if case in IN_ITS_OWN_PROCESS else "answers_here"
    return request.getfixturevalue(answers)[case], request.getfixturevalue("wrong_paths_root") / case


@pytest.mark.parametrize(
    "case", [pytest.param(case, marks=pytest.mark.slow) if case in IN_ITS_OWN_PROCESS else case for case in WRONG_PATHS]
)
def test_every_command_answers_a_wrong_path_in_one_line(case, request):
    """Non-zero status, no traceback, and stderr ends with `error: ...` naming the path (lines before it are the
    loaders' progress bars); nothing is written on the way (export-onnx used to create the model folder)."""
    completed, missing = answer(request, case)
    assert completed.returncode != 0, completed.stdout[-2000:]
    assert "Traceback" not in completed.stderr, completed.stderr[-3000:]
    last = completed.stderr.strip().splitlines()[-1]
    named = WRONG_PATHS[case][1].format(missing=missing)
    assert last.startswith("error: ") and named in last, completed.stderr[-2000:]
    assert not missing.exists()


def test_a_missing_input_file_is_named_and_fails_the_run(request):
    completed, missing = answer(request, "predict-input")
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert f"error: {missing}/clip.wav: no such file or folder" in completed.stderr


@pytest.mark.slow
def test_a_config_file_that_is_no_mapping_is_named(request):
    completed, missing = answer(request, "train-config-list")
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr[-3000:]
    assert completed.stderr.strip() == f"error: {missing}.yaml must hold a mapping of options, got list"


def test_the_server_refuses_a_malformed_login_with_the_message_alone(saved_model_dir, monkeypatch):
    """`python app.py` has always answered without the `error: ` prefix (its messages are pinned by test_app)."""
    from esc50_hf.serving.server import AUTH_ENV, ServerOptionError, main, parse_auth

    with pytest.raises(ServerOptionError, match="USER:PASSWORD"):
        parse_auth("alice")  # the library raises; it never exits
    monkeypatch.setenv(AUTH_ENV, "alice:")
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(saved_model_dir)])
    assert exit_info.value.code == f"--auth / ${AUTH_ENV} must be USER:PASSWORD with both parts non-empty."


def test_card_names_an_unreadable_results_file_before_writing(tmp_path):
    from esc50_hf.cli import main

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("metrics.json", "training_config.json"):
        (folder / name).write_text('{"validation_fold": 5}')
    named = re.escape(f"error: --baseline {tmp_path / 'nothing.json'}: not a readable JSON file")
    with pytest.raises(SystemExit, match=f"^{named}"):
        main(["card", "--model", str(folder), "--baseline", str(tmp_path / "nothing.json")])
    assert sorted(path.name for path in folder.iterdir()) == ["metrics.json", "training_config.json"]


def test_library_code_never_ends_the_process():
    """No `sys.exit`, `exit` or `raise SystemExit` outside the command line's entry points (argparse's own usage
    errors, `parser.error`, are the one other way out)."""
    package = Path(esc50_hf.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).as_posix() in EXITING_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            called = node.func if isinstance(node, ast.Call) else None
            raised = node.exc.func if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) else None
            raised = raised or (node.exc if isinstance(node, ast.Raise) else None)
            names = {ast.unparse(item) for item in (called, raised) if item is not None}
            if names & {"sys.exit", "exit", "quit", "SystemExit", "os._exit"}:
                found.append(f"{path.relative_to(package)}:{node.lineno}")
    assert not found, found


def test_user_errors_are_one_family_and_keep_their_builtin_bases():
    from esc50_hf.data.augmentation import AugmentationParameterError
    from esc50_hf.data.esc50 import Esc50DataError
    from esc50_hf.data.feature_file import FeatureFileError
    from esc50_hf.data.features import FeatureWriteError
    from esc50_hf.errors import OutputExistsError
    from esc50_hf.inference.batch import BatchPredictionError
    from esc50_hf.inference.classifier import ModelLoadError
    from esc50_hf.inference.onnx_backend import OnnxFileMissingError
    from esc50_hf.model.audio_io import AudioInputError
    from esc50_hf.publish import HubPublishError
    from esc50_hf.serving.server import ServerOptionError
    from esc50_hf.training.distillation import TeacherError
    from esc50_hf.training.model_folder import ModelFolderError
    from esc50_hf.training.recipe import ConfigFileError
    from esc50_hf.training.reports import CompanionResultsError
    from esc50_hf.training.run_folder import OutputFolderError
    from esc50_hf.training.transfer import StartingModelError

    builtin_bases = {
        AugmentationParameterError: ValueError, Esc50DataError: ValueError, FeatureFileError: ValueError,
        OutputExistsError: FileExistsError, BatchPredictionError: RuntimeError, ModelLoadError: RuntimeError,
        OnnxFileMissingError: FileNotFoundError, HubPublishError: RuntimeError, ServerOptionError: ValueError,
        TeacherError: ValueError, ModelFolderError: ValueError, ConfigFileError: ValueError,
        CompanionResultsError: ValueError, OutputFolderError: RuntimeError, FeatureWriteError: OSError,
        StartingModelError: ValueError,
    }  # fmt: skip
    for error, builtin in builtin_bases.items():
        assert issubclass(error, Esc50HfError) and issubclass(error, builtin), error
    assert tuple(USER_ERRORS) == (Esc50HfError, AudioInputError)
    assert not issubclass(AudioInputError, Esc50HfError)  # audio_io ships alone in model folders


def test_space_answers_a_folder_it_cannot_write_in_one_line(saved_model_dir, tmp_path, capsys):
    """`esc50-hf space`: a non-empty --output, an --output that is a file and a missing model are usage errors (status
    2, one `error: ` line naming the path, no traceback), and nothing is written."""
    from esc50_hf.cli import main

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("mine")
    cases = {
        "full": (["--output", str(tmp_path / "full"), "--model", str(saved_model_dir)], tmp_path / "full"),
        "file": (["--output", str(tmp_path / "file"), "--model", str(saved_model_dir)], tmp_path / "file"),
        "model": (["--output", str(tmp_path / "new"), "--model", str(tmp_path / "missing")], tmp_path / "missing"),
    }
    for case, (options, named) in cases.items():
        assert main(["space", *options]) == 2, case
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and str(named) in lines[0], (case, captured.err)
        assert "Traceback" not in captured.err and captured.out == "", case
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file", "full"]  # "new" was never created
    assert [path.name for path in (tmp_path / "full").iterdir()] == ["keep.txt"]
    assert (tmp_path / "file").read_text() == "mine"
