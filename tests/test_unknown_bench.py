"""bench/unknown.py's carry-over: an earlier report's measurements (the selection data, the class splits measured in
another session) are reused only while the model's calibration is the one they were made with."""

import json

from esc50_hf.paths import DEFAULT_MODEL_DIR


def _report_of(config: dict) -> dict:
    return {
        "temperature": config["calibration_temperature"],
        "threshold": config["unknown_threshold"],
        "quantiles": config["unknown_quantiles"],
        "fitted_on": config["calibration"]["fitted_on"],
        "held_out_classes": {"splits": [{"split": "pair-s0"}]},
    }


def test_an_earlier_report_is_reused_only_with_the_same_calibration(tmp_path):
    from bench.unknown import earlier_report

    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    path = tmp_path / "unknown.json"
    assert earlier_report(path, config) is None  # nothing measured yet
    path.write_text(json.dumps(_report_of(config)))
    assert earlier_report(path, config)["held_out_classes"]["splits"] == [{"split": "pair-s0"}]
    for key, changed in (
        ("calibration_temperature", config["calibration_temperature"] * 1.01),
        ("unknown_threshold", config["unknown_threshold"] + 0.001),
        ("unknown_quantiles", {**config["unknown_quantiles"], "atypicality_tail": 0.5}),
    ):
        assert earlier_report(path, {**config, key: changed}) is None, key


def test_the_committed_report_reads_with_the_shipped_calibration():
    """bench/unknown.json and the shipped config agree, so a session can add class splits to it."""
    from bench.unknown import ROOT, earlier_report

    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert earlier_report(ROOT / "bench" / "unknown.json", config) is not None


def test_the_card_shows_the_committed_reports_figures():
    """The shipped folder's unknown_results.json (the card's sentence) is what bench/unknown.json says."""
    from bench.unknown import ROOT, card_results

    report = json.loads((ROOT / "bench" / "unknown.json").read_text())
    assert json.loads((DEFAULT_MODEL_DIR / "unknown_results.json").read_text()) == json.loads(
        json.dumps(card_results(report))
    )
    one_split = {**report["held_out_classes"], "splits": report["held_out_classes"]["splits"][:1]}
    if one_split["splits"]:
        assert " ± " not in card_results({**report, "held_out_classes": one_split})["summary"].split("AUROC")[1]
