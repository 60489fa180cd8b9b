"""The real web app (`python app.py`) on 127.0.0.1: gradio_client, raw REST, bad input, 100 clients, a browser.

The server is started once for the module, as a subprocess of the real entry point, with the
small random model of `saved_model_dir`; every answer is checked against an in-process
`SoundClassifier` on the same model, so a wrong file, mixed-up requests or a broken
pre-processing step show up as wrong labels, not just as HTTP 200.
"""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from esc50_hf.inference.classifier import SoundClassifier
from esc50_hf.serving.app import NO_AUDIO_MESSAGE, TIMELINE_COLUMNS, classify
from esc50_hf.serving.server import main
from esc50_hf.serving.uploads import URL_INPUT_MESSAGE

from .app_server import app_subprocess
from .conftest import synthetic_clip

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MAX_SECONDS = 30  # the test server's limits: small, so that the "too long/large" files stay small
MAX_MB = 1
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server_folder(tmp_path_factory) -> Path:
    """The module server's folder: its log (`server.log`) and Gradio's temporary folder."""
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def server(saved_model_dir, server_folder):
    """`python app.py --model <random model>` on a free port; yields `(url, process)`."""
    folder = server_folder
    args = ["--model", str(saved_model_dir), "--max-seconds", str(MAX_SECONDS), "--max-mb", str(MAX_MB)]
    env = {"GRADIO_TEMP_DIR": str(folder / "gradio-tmp")}  # uploads land here, not in /tmp/gradio
    with app_subprocess(args, folder / "server.log", env) as running:  # the default queue and concurrency
        yield running


@pytest.fixture(scope="module")
def local(saved_model_dir) -> SoundClassifier:
    return SoundClassifier(saved_model_dir)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Distinct WAVs: different classes' tones, rates, lengths and channel counts (one 12-s stereo)."""
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for index in range(20):
        rate = (16000, 22050, 44100, 48000)[index % 4]
        seconds = 12.0 if index == 0 else 1.0 + index % 5
        samples = synthetic_clip(target=(index * 7) % 50, seed=index, rate=rate, seconds=seconds)
        if index % 3 == 0:
            samples = np.stack([samples, 0.5 * samples[::-1]], axis=1)
        paths.append(folder / f"clip{index:02d}.wav")
        sf.write(paths[-1], samples, rate, subtype="PCM_16")
    return paths


def _expected(local: SoundClassifier, path: Path) -> tuple[str, dict[str, float], list[list]]:
    prediction = local.predict(path, top_k=5)
    rows = [[w.start, w.end, w.label, round(w.score, 4)] for w in prediction.windows]
    return prediction.label, prediction.confidences(), rows


def _check_label_output(label_output: dict, confidences: dict[str, float]) -> None:
    assert label_output["label"] == next(iter(confidences))
    got = {item["label"]: item["confidence"] for item in label_output["confidences"]}
    assert list(got) == list(confidences)
    assert list(got.values()) == pytest.approx(list(confidences.values()), abs=1e-5)


def _rest_predict(url: str, path: Path | None) -> tuple[str, object]:
    """The README's curl recipe: upload, call, read the event stream; returns `(event, data)`."""
    api = f"{url}/gradio_api"
    payload = None
    if path is not None:
        with path.open("rb") as handle:
            upload = requests.post(f"{api}/upload", files={"files": (path.name, handle)}, timeout=30)
        if upload.status_code != 200:
            return f"upload {upload.status_code}", upload.text
        payload = {"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}
    call = requests.post(f"{api}/call/predict", json={"data": [payload]}, timeout=30)
    call.raise_for_status()
    stream = requests.get(f"{api}/call/predict/{call.json()['event_id']}", timeout=60)
    event, data = None, None
    for line in stream.text.splitlines():  # SSE: "event: <name>" then "data: <json>"
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = json.loads(line.split(":", 1)[1])
    return event, data


def test_gradio_client(server, local, clips):
    url, _ = server
    client = Client(url, verbose=False, analytics_enabled=False)
    for path in clips[:2]:  # clip 0: 12 s stereo -> 4 windows
        label_output, table = client.predict(handle_file(str(path)), api_name="/predict")
        _, confidences, rows = _expected(local, path)
        _check_label_output(label_output, confidences)
        assert table["headers"] == ["start_s", "end_s", "label", "score"]
        assert [row[:3] for row in table["data"]] == [row[:3] for row in rows]
        assert [row[3] for row in table["data"]] == pytest.approx([row[3] for row in rows], abs=2e-4)


def test_the_timeline_table_is_the_schemas_window_rows(local, clips):
    """`/predict`'s table: the columns are the schema's window keys (the REST format pinned by the tests above),
    each row a window's `to_row()` with scores to 4 decimals; the label output is `confidences()`."""
    confidences, table = classify(local, str(clips[0]))
    prediction = local.predict(clips[0])
    assert list(table.columns) == TIMELINE_COLUMNS == ["start_s", "end_s", "label", "score"]  # the best label only
    assert table.to_dict("records") == [window.to_row(digits=4) for window in prediction.windows]
    assert len(table) == 4 and confidences == prediction.confidences()


def test_rest_two_step_protocol(server, local, clips):
    url, _ = server
    event, data = _rest_predict(url, clips[0])
    assert event == "complete", data
    label_output, table = data
    _, confidences, rows = _expected(local, clips[0])
    _check_label_output(label_output, confidences)
    assert [row[:3] for row in table["data"]] == [row[:3] for row in rows]
    assert [row[0] for row in table["data"]] == [0.0, 2.5, 5.0, 7.0]  # the last window ends at 12 s


def _write(folder: Path, name: str, content: bytes | tuple[np.ndarray, int, str]) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        samples, rate, subtype = content
        sf.write(path, samples, rate, subtype=subtype)
    return path


BAD_FILES = {
    "empty file": ("empty.wav", b"", "empty (0 bytes)"),
    "corrupt bytes": ("corrupt.wav", np.random.default_rng(1).bytes(20000), "could not be decoded as audio"),
    "text renamed .wav": ("notes.wav", b"shopping list: milk, eggs\n" * 50, "could not be decoded as audio"),
    "truncated wav": ("cut.wav", None, "could not be decoded as audio"),
    "nan samples": ("nan.wav", (np.full(8000, np.nan, np.float32), 8000, "FLOAT"), "NaN or infinite"),
    "too long": ("long.wav", (np.zeros(8000 * (MAX_SECONDS + 5), np.int16), 8000, "PCM_16"), "too long: 35.0 s"),
    "too short": ("blip.wav", (np.zeros(400, np.int16), 22050, "PCM_16"), "too short"),
    "rate too low": ("low.wav", (np.zeros(4000, np.int16), 4000, "PCM_16"), "Unsupported sampling rate 4000 Hz"),
    "png image": ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(5000), "it looks like a PNG image, not a sound"),
    "40 channels": ("many.wav", (np.zeros((8000, 40), np.int16), 8000, "PCM_16"), "has 40 channels; at most 32"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_input_gives_its_error_and_the_server_goes_on(server, local, clips, tmp_path, kind):
    url, process = server
    name, content, message = BAD_FILES[kind]
    if content is None:  # a valid header promising more data than there is
        sf.write(tmp_path / "full.wav", np.zeros(22050, np.int16), 22050)
        content = (tmp_path / "full.wav").read_bytes()[:40]
    event, data = _rest_predict(url, _write(tmp_path, name, content))
    assert event == "error" and message in data["error"], data
    good_event, good = _rest_predict(url, clips[1])
    assert good_event == "complete" and good[0]["label"] == _expected(local, clips[1])[0]
    assert process.poll() is None


def test_bad_input_through_gradio_client(server, tmp_path):
    client = Client(server[0], verbose=False, analytics_enabled=False)
    with pytest.raises(AppError, match="could not be decoded as audio"):
        client.predict(handle_file(str(_write(tmp_path, "junk.mp3", b"\x00\x01junk" * 100))), api_name="/predict")


def test_no_audio(server):
    event, data = _rest_predict(server[0], None)
    assert event == "error" and data["error"] == NO_AUDIO_MESSAGE


def test_too_large_upload_is_refused(server, tmp_path):
    path = _write(tmp_path, "big.wav", (np.zeros(int(MAX_MB * 2**20), np.int16), 44100, "PCM_16"))
    event, text = _rest_predict(server[0], path)
    assert event == "upload 413", text


def test_twenty_concurrent_gradio_clients(server, local, clips):
    url, process = server
    expected = {path: _expected(local, path)[1] for path in clips}

    def one_client(path: Path) -> tuple[Path, dict]:
        client = Client(url, verbose=False, analytics_enabled=False)
        return path, client.predict(handle_file(str(path)), api_name="/predict")[0]

    with ThreadPoolExecutor(len(clips)) as pool:
        answers = list(pool.map(one_client, clips))
    assert len(answers) == 20
    for path, label_output in answers:
        _check_label_output(label_output, expected[path])
    assert process.poll() is None


def test_hundred_concurrent_rest_clients_are_all_answered(server, local, clips):
    """A burst of 100 clients (upload, call, read the stream) with the default queue: none refused, none failed,
    each answer the one for its own file although their windows shared forward passes."""
    url, process = server
    expected = {path: _expected(local, path)[1] for path in clips}
    paths = [clips[index % len(clips)] for index in range(100)]
    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(lambda path: (path, _rest_predict(url, path)), paths))
    failed = [(path.name, event, str(data)[:200]) for path, (event, data) in answers if event != "complete"]
    assert not failed, failed
    for path, (_, data) in answers:
        _check_label_output(data[0], expected[path])
    assert process.poll() is None


def test_only_predict_is_in_the_api(server, clips):
    url, _ = server
    info = requests.get(f"{url}/gradio_api/info", params={"all_endpoints": "true"}, timeout=10).json()
    assert list(info["named_endpoints"]) == ["/predict"] and not info.get("unnamed_endpoints")
    for name in ("spectrogram", "draw", "load_example", "lambda"):
        call = requests.post(f"{url}/gradio_api/call/{name}", json={"data": [None]}, timeout=10)
        assert call.status_code >= 400, (name, call.status_code, call.text[:200])


def test_unknown_endpoints_and_paths_not_uploaded_get_a_4xx_sentence_and_no_traceback(server, server_folder):
    """Unknown names (REST, the queue's fn_index) get HTTP 404 and paths that were not uploaded (absolute, relative
    to the server's working directory, escaping the upload folder) HTTP 400: one sentence that names no server
    path, and nothing in the server's log; the server goes on serving."""
    from esc50_hf.serving.refusals import NOT_UPLOADED_MESSAGE, UNKNOWN_ENDPOINT_MESSAGE

    url, process = server
    log = server_folder / "server.log"
    logged = log.stat().st_size
    for call in (
        requests.post(f"{url}/gradio_api/call/nosuch", json={"data": [None]}, timeout=10),
        requests.post(f"{url}/gradio_api/run/nosuch", json={"data": [None]}, timeout=10),
        requests.post(f"{url}/gradio_api/queue/join", json={"data": [None], "fn_index": 999, "session_hash": "x"}),
    ):
        assert (call.status_code, call.json()) == (404, {"detail": UNKNOWN_ENDPOINT_MESSAGE}), call.text[:300]
    for path in ("/etc/passwd", "app.py", "../../etc/passwd", str(server_folder / "gradio-tmp" / "x.wav")):
        payload = {"path": path, "meta": {"_type": "gradio.FileData"}}
        call = requests.post(f"{url}/gradio_api/call/predict", json={"data": [payload]}, timeout=10)
        assert (call.status_code, call.json()) == (400, {"detail": NOT_UPLOADED_MESSAGE}), call.text[:300]
        assert str(REPO) not in call.text and "/tmp" not in call.text
    assert log.read_text()[logged:] == "" and process.poll() is None


def test_uploads_are_deleted_after_keep_uploads_seconds(saved_model_dir, tmp_path, clips):
    """Whether classified or only uploaded, files leave the upload folder after --keep-uploads seconds; another
    app's old file in the shared Gradio folder is left alone, and the server's own folder goes when it stops."""
    import os
    import time

    temp = tmp_path / "gradio-tmp"  # Gradio's folder, shared with every Gradio app on the machine
    decoy = temp / "other-app" / "upload.wav"  # another app's upload, older than --keep-uploads
    decoy.parent.mkdir(parents=True)
    decoy.write_bytes(bytes(1000))
    os.utime(decoy, (time.time() - 3600, time.time() - 3600))

    def ours() -> list[Path]:
        return [path for path in temp.rglob("*") if path.is_file() and path != decoy]

    args = ["--model", str(saved_model_dir), "--keep-uploads", "2", "--no-examples"]
    with app_subprocess(args, tmp_path / "server.log", {"GRADIO_TEMP_DIR": str(temp)}) as (url, _):
        assert _rest_predict(url, clips[1])[0] == "complete"
        with clips[2].open("rb") as handle:  # an upload that is never classified
            requests.post(f"{url}/gradio_api/upload", files={"files": (clips[2].name, handle)}, timeout=30)
        assert len(ours()) == 2 and all(path.relative_to(temp).parts[0].startswith("esc50-hf-") for path in ours())
        deadline = time.monotonic() + 30
        while ours() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not ours()
        time.sleep(2)  # two more sweeps
        assert decoy.is_file()
    assert not list(temp.glob("esc50-hf-*")) and decoy.is_file()  # SIGTERM: the server's own folder is gone


def test_a_url_in_place_of_a_file_is_refused_without_fetching_it(server, tmp_path):
    """`handle_file(url)` sends a URL that Gradio would download whole, whatever its size: refused, not fetched."""
    import http.server
    import threading

    requested = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            requested.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(bytes(1_000_000))

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        link = f"http://127.0.0.1:{web.server_address[1]}/big.wav"
        payload = {"path": link, "url": link, "orig_name": "big.wav", "meta": {"_type": "gradio.FileData"}}
        for stream_flag in ({}, {"is_stream": True}):  # a stream skips Gradio's download and reaches the event
            call = requests.post(
                f"{server[0]}/gradio_api/call/predict", json={"data": [payload | stream_flag]}, timeout=10
            )
            stream = requests.get(f"{server[0]}/gradio_api/call/predict/{call.json()['event_id']}", timeout=30)
            event, data = [line.split(":", 1)[1].strip() for line in stream.text.splitlines() if ":" in line][:2]
            assert event == "error" and json.loads(data)["error"] == URL_INPUT_MESSAGE, stream.text
        web.shutdown()
    assert requested == []


def test_url_downloads_are_refused_for_any_component():
    """Refused at Gradio's download functions, not on one component: an example click gives the session a fresh
    `gr.Audio`, which must refuse too."""
    import asyncio

    import gradio as gr

    from esc50_hf.serving.uploads import refuse_url_downloads

    refuse_url_downloads()
    for component in (gr.Audio(type="filepath"), gr.File()):
        with pytest.raises(gr.Error, match="does not download audio from URLs"):
            asyncio.run(component.async_move_resource_to_block_cache("https://example.com/big.wav"))
        with pytest.raises(gr.Error, match="does not download audio from URLs"):
            component.move_resource_to_block_cache("https://example.com/big.wav")


def test_browser_upload_shows_a_label(server, local, clips):
    """Headless Chromium uploads a WAV on the page and sees the label the model gives it."""
    from playwright.sync_api import expect, sync_playwright

    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    top_label = _expected(local, clips[0])[0]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        try:
            page.goto(server[0])  # not "networkidle": the live stream keeps a heartbeat open
            page.locator("input[type=file]").first.set_input_files(str(clips[0]))  # the upload event runs /predict
            expect(page.get_by_test_id("label-output-value")).to_have_text(top_label, timeout=60_000)
            expect(page.get_by_test_id("matplotlib")).to_be_visible(timeout=30_000)
            # 12 s: the 4th window ends at the end, so it starts at 7 s
            expect(page.get_by_test_id("cell-3-0")).to_have_text(re.compile(r"^\s*7(\.0)?\s*$"))
        finally:
            page.screenshot(path=str(artifacts / "demo.png"), full_page=True)  # also when it failed: to look at
            browser.close()


def test_example_clips_are_real_and_credited(server):
    """The page offers the real ESC-50 clips of examples/ (the model knows their classes), with their authors and
    licence."""
    page = requests.get(server[0], timeout=10).text
    config = requests.get(f"{server[0]}/config", timeout=10).text
    assert "Example clips" in config and "ESC-50" in config and "CC BY-NC 3.0" in config and "soundmary" in config, (
        page[:300]
    )


def test_example_clips_outlive_keep_uploads_and_classify_on_click(saved_model_dir, local, clips, tmp_path):
    """With --keep-uploads 2, the page's copies of the example clips survive the sweeps that delete uploads: each is
    still served, and a click on it in headless Chromium classifies it (label and spectrogram), as an upload is."""
    import time

    from playwright.sync_api import expect, sync_playwright

    from esc50_hf.paths import EXAMPLES_DIR
    from esc50_hf.serving.app import read_examples

    temp = tmp_path / "gradio-tmp"
    examples = [row for row in read_examples(EXAMPLES_DIR) if row["category"] in local.labels]
    args = ["--model", str(saved_model_dir), "--keep-uploads", "2"]
    with app_subprocess(args, tmp_path / "server.log", {"GRADIO_TEMP_DIR": str(temp)}) as (url, _):
        with clips[1].open("rb") as handle:  # an upload: its deletion shows that sweeps past 2 s have run
            upload = requests.post(f"{url}/gradio_api/upload", files={"files": (clips[1].name, handle)}, timeout=30)
        uploaded = Path(upload.json()[0])
        deadline = time.monotonic() + 30
        while uploaded.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not uploaded.exists()
        copies = sorted(path for path in temp.rglob("*") if path.is_file())
        assert sorted(path.name for path in copies) == sorted(row["file"] for row in examples)
        for path in copies:
            served = requests.get(f"{url}/gradio_api/file={path}", timeout=10)
            assert served.status_code == 200 and served.content == (EXAMPLES_DIR / path.name).read_bytes()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            try:
                page.goto(url)  # not "networkidle": the live stream keeps a heartbeat open
                for index, row in enumerate(examples):
                    page.locator("button.gallery-item").nth(index).click()  # loads the clip, then classifies it
                    expect(page.get_by_test_id("label-output-value")).to_have_text(
                        _expected(local, row["path"])[0], timeout=60_000
                    )
                    expect(page.get_by_test_id("matplotlib")).to_be_visible(timeout=30_000)
            finally:
                page.screenshot(path=str(REPO / "test-artifacts" / "examples.png"), full_page=True)
                browser.close()


def test_the_api_pages_example_is_a_local_file_that_works(server, local):
    """The "Use via API" page shows `handle_file(<example>)` from the parameter's example input: an example clip as
    the checkout holds it, which works when sent (Gradio's own example is a URL, which this server refuses)."""
    info = requests.get(f"{server[0]}/gradio_api/info", timeout=10).json()
    example = info["named_endpoints"]["/predict"]["parameters"][0]["example_input"]
    path = REPO / example["path"]
    assert not example["path"].startswith(("http:", "https:", "/")) and path.is_file(), example
    label_output, _ = Client(server[0], verbose=False, analytics_enabled=False).predict(
        handle_file(str(path)), api_name="/predict"
    )
    _check_label_output(label_output, _expected(local, path)[1])


def test_missing_default_model_says_to_pass_model(tmp_path):
    with pytest.raises(SystemExit, match="pass --model"):
        main([], default_model=tmp_path / "models" / "esc50-mel-cnn")


def test_missing_model_folder_is_reported(tmp_path):
    with pytest.raises(SystemExit, match="No model folder at"):
        main(["--model", str(tmp_path / "nowhere")])


def test_damaged_model_file_is_one_clear_line(saved_model_dir, tmp_path):
    import shutil

    folder = shutil.copytree(saved_model_dir, tmp_path / "model")
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:1000])  # truncated
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(folder)])
    message = str(exit_info.value.code)
    assert message.startswith(f"Cannot load the model {str(folder)!r} with the torch backend:") and "\n" not in message


def test_browser_microphone_recording(server):
    """Chromium's fake microphone (a beep): record 2.5 s, stop; the recording is classified and drawn."""
    from playwright.sync_api import expect, sync_playwright

    fake_microphone = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS + fake_microphone)
        page = browser.new_context(permissions=["microphone"], viewport={"width": 1280, "height": 1000}).new_page()
        try:
            page.goto(server[0])  # not "networkidle": the live stream keeps a heartbeat open
            page.get_by_role("button", name="Record audio").click()  # the microphone source
            page.get_by_role("button", name="Record", exact=True).click()
            page.wait_for_timeout(2500)
            page.get_by_role("button", name="Stop", exact=True).first.click()  # stop_recording runs /predict
            expect(page.get_by_test_id("label-output-value")).not_to_be_empty(timeout=60_000)
            expect(page.get_by_test_id("matplotlib")).to_be_visible(timeout=30_000)
            end = float(page.get_by_test_id("cell-0-1").inner_text())
            assert 1.5 < end < 5.0, end  # one window, as long as the recording
        finally:
            page.screenshot(path=str(REPO / "test-artifacts" / "microphone.png"), full_page=True)
            browser.close()


def test_upload_janitor_bounds_the_folder_in_age_and_spares_uploads_in_progress(tmp_path):
    import os
    import time

    from esc50_hf.serving.uploads import UploadJanitor

    now = time.time()
    for index in range(4):  # 4 uploads, one a second, the newest 2 s old
        folder = tmp_path / f"hash{index}"
        folder.mkdir()
        (folder / "clip.wav").write_bytes(bytes(100_000))
        os.utime(folder / "clip.wav", (now - 5 + index, now - 5 + index))
    partial = tmp_path / "tmpabc123"  # what Gradio writes while an upload is in progress, stalled for 60 s
    partial.write_bytes(bytes(1000))
    os.utime(partial, (now - 60, now - 60))
    kept = str(tmp_path / "hash0" / "clip.wav")  # e.g. an example clip Gradio keeps in its cache
    uploading = True
    remembered = {str(path) for path in tmp_path.rglob("*.wav")} | {str(tmp_path / "read-and-deleted" / "chunk.wav")}
    janitor = UploadJanitor(
        tmp_path, max_age=2.5, interval=3600, keep=lambda: {kept}, uploading=lambda: uploading, remembered=remembered
    )
    assert janitor.sweep() == 2  # hash1 (4 s) and hash2 (3 s) are too old; hash3 (2 s) stays
    assert remembered == {kept, str(tmp_path / "hash3" / "clip.wav")}  # Gradio's set of uploads forgets the gone
    assert sorted(path.parent.name for path in tmp_path.rglob("*.wav")) == ["hash0", "hash3"]
    assert not (tmp_path / "hash1").exists() and partial.is_file()  # the upload's own folder goes with it
    uploading = False
    assert janitor.sweep() == 1 and not partial.exists()  # left behind by a broken-off upload
    janitor.stop()


def test_upload_budget_counts_the_folder_and_the_uploads_in_progress(tmp_path):
    from esc50_hf.serving.uploads import UploadBudget

    (tmp_path / "hash0").mkdir()
    (tmp_path / "hash0" / "old.wav").write_bytes(bytes(400))
    (tmp_path / "hash1").mkdir()
    (tmp_path / "hash1" / "example.flac").write_bytes(bytes(5000))
    keep = {str(tmp_path / "hash1" / "example.flac")}
    budget = UploadBudget(tmp_path, max_bytes=1000, keep=lambda: keep, refresh=0.0)  # listed every time
    assert budget.used() == 400
    assert budget.reserve(500) and budget.in_progress == 1
    assert not budget.reserve(101) and budget.in_progress == 1  # 400 + 500 + 101 > 1000
    budget.release(500)  # it stored nothing: the listing says so
    assert budget.reserve(600) and not budget.reserve(1)


def test_upload_budget_lists_the_folder_once_per_refresh_and_counts_ended_uploads_meanwhile(tmp_path):
    """Issue 26: the budget listed the whole upload folder on every upload. Now a listing serves `refresh` seconds;
    meanwhile an upload that ends counts with its declared size (a file written by it is not missed), and what
    changes in the folder otherwise shows at the next listing."""
    from esc50_hf.serving.uploads import UploadBudget

    (tmp_path / "hash0").mkdir()
    (tmp_path / "hash0" / "old.wav").write_bytes(bytes(400))
    budget = UploadBudget(tmp_path, max_bytes=1000, refresh=3600.0)
    assert budget.used() == 400
    (tmp_path / "hash0" / "old.wav").unlink()  # the janitor's work: not listed again within the hour
    (tmp_path / "hash2").mkdir()
    (tmp_path / "hash2" / "new.wav").write_bytes(bytes(300))
    assert budget.used() == 400
    assert budget.reserve(300)
    budget.release(300)  # it stored hash2/new.wav: counted at once
    assert budget.used() == 700 and not budget.reserve(301) and budget.reserve(300)
    budget.release(300)
    budget.refresh = 0.0  # the next listing: the folder as it is (old.wav gone)
    assert budget.used() == 300


def _upload(url: str, name: str, content: bytes, stall: float = 0.0) -> tuple[int, str]:
    """POSTs one file to `/gradio_api/upload` as a browser does; with `stall`, sends half, waits, sends the rest."""
    import http.client
    import time
    from urllib.parse import urlsplit

    boundary = "esc50-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    connection.putrequest("POST", "/gradio_api/upload")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    connection.send(body[: len(body) // 2])
    time.sleep(stall)
    connection.send(body[len(body) // 2 :])
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, text


def test_the_upload_disk_cap_is_hard_and_uploads_in_progress_are_never_swept(saved_model_dir, tmp_path):
    """--max-upload-mb 1: uploads that fit are stored, the one that would pass the cap gets HTTP 413 and a sentence
    before it is read, and the folder never holds more; once old uploads expire (--keep-uploads 2) uploads are taken
    again. An upload stalled past --keep-uploads is not swept from under its request: it is stored whole."""
    import os
    import time

    from esc50_hf.serving.uploads import UPLOAD_FOLDER_FULL_MESSAGE

    temp = tmp_path / "gradio-tmp"

    def stored() -> int:
        return sum(path.stat().st_size for path in temp.rglob("*") if path.is_file())

    args = ["--model", str(saved_model_dir), "--no-examples", "--keep-uploads", "2", "--max-upload-mb", "1"]
    with app_subprocess(args, tmp_path / "server.log", {"GRADIO_TEMP_DIR": str(temp)}) as (url, process):
        contents = [os.urandom(400_000) for _ in range(3)]
        answers = [_upload(url, f"part{index}.wav", content) for index, content in enumerate(contents)]
        assert [status for status, _ in answers] == [200, 200, 413], answers
        assert json.loads(answers[2][1]) == {"detail": UPLOAD_FOLDER_FULL_MESSAGE}
        assert stored() <= 2**20
        deadline = time.monotonic() + 30  # the first two expire
        while stored() and time.monotonic() < deadline:
            time.sleep(0.5)
        status, text = _upload(url, "slow.wav", contents[2], stall=5.0)  # 5 s half-sent: two sweeps pass
        assert status == 200, text
        assert Path(json.loads(text)[0]).read_bytes() == contents[2]
        assert "Traceback" not in (tmp_path / "server.log").read_text() and process.poll() is None


def test_importing_the_demo_writes_nothing_into_the_package():
    """Gradio writes a `.pyi` beside the module of any `Component` subclass: the demo defines none."""
    import esc50_hf.serving.app

    package = Path(esc50_hf.serving.app.__file__).parent
    assert not list(package.glob("*.pyi"))
