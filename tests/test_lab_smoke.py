"""End to end: ``rewardsmith lab --preset tiny`` writes its report, results and plots, with finite
numbers in range, for every built-in spec and a user spec (the effect size is not checked)."""

import json
import math

import pytest
import yaml

from rewardsmith.cli import main
from rewardsmith.lab.specs import DEFAULT_NAMES


@pytest.mark.slow  # trains the lab's policy (SFT, then GRPO per spec)
@pytest.mark.timeout(240)
def test_tiny_preset_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REWARDSMITH_CACHE", str(tmp_path / "cache"))
    user_spec = tmp_path / "mine.yaml"
    user_spec.write_text(
        yaml.safe_dump(
            {
                "verifier": {"name": "exact", "extract": ["hash"]},
                "shaping": [{"name": "l1_max", "target": 20}],
                "length_unit": "tokens",
            }
        )
    )
    out = tmp_path / "run"
    assert main(["lab", "--preset", "tiny", "--spec", str(user_spec), "--out", str(out)]) == 0
    for name in ("report.md", "results.json", "accuracy_vs_tokens.png", "by_difficulty.png", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "seeds" / "0" / "report.md").stat().st_size > 0

    results = json.loads((out / "results.json").read_text())
    assert results["preset"] == "tiny" and results["baseline"] == "correctness" and results["seeds"] == [0]
    assert results["smoke"] is True and results["study"]["recommended"] == [] and results["failures"] == []
    assert math.isfinite(results["seconds"]) and results["seconds"] > 0
    assert list(results["specs"]) == [*DEFAULT_NAMES, "mine"]  # tiny runs the default set (no --only)
    for name, r in results["specs"].items():
        assert 0.0 <= r["accuracy"] <= 1.0, name
        assert 0.0 < r["mean_tokens"] <= 64 + 1, name
        assert set(r["by_difficulty"]) == {str(k) for k in range(2, 8)}
        for level in r["by_difficulty"].values():
            assert 0.0 <= level["accuracy"] <= 1.0 and level["n"] == 8
        for key in ("token_reduction", "accuracy_change", "aes", "redundant_share"):
            assert math.isfinite(r[key]), (name, key)
        curve = results["runs"]["0"]["specs"][name]["curve"]
        assert len(curve) == 2 and all(math.isfinite(c["reward"]) and 0 <= c["accuracy"] <= 1 for c in curve)
    assert results["specs"]["correctness"]["token_reduction"] == 0.0

    report = (out / "report.md").read_text()
    assert "Smoke test" in report and "| correctness |" in report and "mine" in report
    assert "Recommended" not in report and "Best AES" not in report
    printed = capsys.readouterr().out
    assert "correctness" in printed and "report:" in printed

    # the base policy is cached: a second run with a subset loads it instead of training
    out2 = tmp_path / "run2"
    assert main(["lab", "--preset", "tiny", "--only", "kimi", "--out", str(out2)]) == 0
    again = json.loads((out2 / "results.json").read_text())
    assert list(again["specs"]) == ["correctness", "kimi"]
    first, second = results["runs"]["0"]["base_policy"], again["runs"]["0"]["base_policy"]
    assert second["sft_cached"] is True and first["sft_cached"] is False
    assert second["accuracy"] == first["accuracy"]

    # a rerun into the same directory skips the finished (seed, spec) pairs
    assert main(["lab", "--preset", "tiny", "--only", "kimi", "--out", str(out2)]) == 0
    assert "already done" in capsys.readouterr().err


def test_bad_spec_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REWARDSMITH_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"verifier": "exact", "shaping": [{"name": "no_such_shaper"}]}))
    assert main(["lab", "--preset", "tiny", "--spec", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "no_such_shaper" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_cuda_requested_without_a_device(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["lab", "--preset", "tiny", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
