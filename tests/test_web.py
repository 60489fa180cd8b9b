"""The static browser page of `esc50-hf web`, in headless Chromium: a file and the (fake) microphone get the same
top-1 as Python, the unknown answer is Python's, and a denied or missing microphone gets a clear message. Needs the
system Chromium and ONNX Runtime Web (downloaded once by `make test-deps`, cached)."""

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from esc50_hf.inference.classifier import SoundClassifier
from esc50_hf.paths import DEFAULT_MODEL_DIR, EXAMPLES_DIR
from esc50_hf.serving.app import UNKNOWN_HEADLINE
from esc50_hf.serving.web import static_server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
CLIPS = ("dog_5-203128-A-0.flac", "rain_5-181766-A-10.flac")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`esc50-hf web` output for the shipped model, served over HTTP on localhost (a secure context)."""
    if not Path(CHROMIUM).is_file():
        pytest.skip("no Chromium at /usr/bin/chromium: make test-deps installs it")
    from esc50_hf.cli import main

    folder = tmp_path_factory.mktemp("web") / "site"
    assert main(["web", "--output", str(folder)]) == 0

    server = static_server(folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/index.html"
    server.shutdown()


@pytest.fixture(scope="module")
def python_top1():
    classifier = SoundClassifier(DEFAULT_MODEL_DIR)
    return {name: classifier.predict(str(EXAMPLES_DIR / name)).labels[0].label for name in CLIPS}


def _open(playwright, url, extra_args=(), permissions=()):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*BROWSER_ARGS, *extra_args])
    page = browser.new_context(permissions=list(permissions)).new_page()
    page.goto(url)
    page.wait_for_function("window.esc50 && (window.esc50.ready || window.esc50.error)", timeout=60_000)
    assert page.evaluate("window.esc50.error") is None
    return browser, page


def test_file_input_gives_python_top1(site, python_top1):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = _open(playwright, site)
        try:
            for name in CLIPS:
                page.evaluate("window.esc50.result = null")
                page.set_input_files("#file", str(EXAMPLES_DIR / name))
                page.wait_for_function("window.esc50.result !== null", timeout=60_000)
                result = page.evaluate("window.esc50.result")
                assert result["labels"][0]["label"] == python_top1[name], name
                assert [window["start_s"] for window in result["windows"]] == [0]  # a 5-s clip is one window
            window_ms = page.evaluate("window.esc50.windowMs")
            print(f"browser (WASM, one thread): {sorted(window_ms)[len(window_ms) // 2]:.1f} ms per 5-s window")
            assert "ms per 5-s window" in page.inner_text("#timing")
        finally:
            browser.close()


def test_the_unknown_answer_is_pythons(site, tmp_path):
    """A steady 1-kHz tone is none of the known sounds, a dog is a dog: the page decides as Python does, from the
    graph's own metadata (model.json), and words it as the app does."""
    from playwright.sync_api import sync_playwright

    classifier = SoundClassifier(DEFAULT_MODEL_DIR)
    threshold = classifier.config.unknown_threshold
    tone = tmp_path / "tone.wav"
    rate = classifier.sampling_rate
    sf.write(tone, 0.3 * np.sin(2 * np.pi * 1000 * np.arange(5 * rate) / rate), rate, subtype="FLOAT")
    with sync_playwright() as playwright:
        browser, page = _open(playwright, site)
        try:
            answers = []
            for path in (tone, EXAMPLES_DIR / CLIPS[0]):
                expected = classifier.predict(str(path)).with_unknown(threshold)
                page.evaluate("window.esc50.result = null")
                page.set_input_files("#file", str(path))
                page.wait_for_function("window.esc50.result !== null", timeout=60_000)
                result = page.evaluate("window.esc50.result")
                assert result["unknown"] == expected.unknown, path.name
                assert abs(result["unknown_score"] - expected.unknown_score) < 0.01, path.name
                guess = expected.best_guess
                words = guess.label.replace("_", " ")
                assert page.inner_text("#answer") == (
                    UNKNOWN_HEADLINE.format(label=words, score=guess.score) if expected.unknown else words
                )
                answers.append(result["unknown"])
            assert answers == [True, False]  # the tone is unknown, the dog known
        finally:
            browser.close()


def test_fake_microphone_gives_python_top1(site, python_top1, tmp_path):
    from playwright.sync_api import sync_playwright

    name = CLIPS[0]
    samples, rate = sf.read(EXAMPLES_DIR / name, dtype="float32")
    wav = tmp_path / "microphone.wav"
    sf.write(wav, samples, rate, subtype="PCM_16")  # Chromium's fake capture reads WAV, looped
    fake = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    with sync_playwright() as playwright:
        browser, page = _open(playwright, site, fake, permissions=["microphone"])
        try:
            page.click("#record")
            page.wait_for_timeout(5500)
            page.click("#stop")
            page.wait_for_function("window.esc50.result !== null || window.esc50.error", timeout=60_000)
            assert page.evaluate("window.esc50.error") in (None, "")
            result = page.evaluate("window.esc50.result")
            assert result["duration_s"] > 4.0
            assert result["labels"][0]["label"] == python_top1[name]
        finally:
            browser.close()


@pytest.mark.parametrize(
    ("extra_args", "permissions", "message"),
    [
        (["--use-fake-device-for-media-stream"], [], "Microphone access was denied"),
        ([], ["microphone"], "No microphone was found"),
    ],
    ids=["denied", "missing"],
)
def test_denied_or_missing_microphone_is_explained(site, extra_args, permissions, message):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, page = _open(playwright, site, extra_args, permissions)
        try:
            page.click("#record")
            expect(page.locator("#error")).to_contain_text(message, timeout=20_000)
            assert page.locator("#stop").is_disabled()
        finally:
            browser.close()


def test_space_writer_includes_the_page(tmp_path):
    from esc50_hf.serving.space import write_space

    space = write_space(tmp_path / "space", DEFAULT_MODEL_DIR, web=True)
    page = space / "web"
    assert {"index.html", "app.js", "model.onnx", "model.json"} <= {path.name for path in page.iterdir()}
    assert (page / "ort" / "ort-wasm-simd-threaded.wasm").is_file()
    assert "python -m http.server -d web" in (space / "README.md").read_text()
