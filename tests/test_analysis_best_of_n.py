import json
import math

import pytest

from rewardsmith.analysis.best_of_n import best_of_n_report, bon_kl, bon_win_rate, select_best_of_n
from rewardsmith.cli import main


@pytest.mark.parametrize(
    "n,kl", [(1, 0.0), (2, math.log(2) - 0.5), (4, math.log(4) - 0.75), (16, math.log(16) - 15 / 16)]
)
def test_bon_kl_hand_values(n, kl):
    assert bon_kl(n) == pytest.approx(kl)


def test_bon_win_rate_and_bad_n():
    assert bon_win_rate(1) == 0.5 and bon_win_rate(3) == 0.75
    with pytest.raises(ValueError):
        bon_kl(0)
    with pytest.raises(ValueError):
        bon_win_rate(0)


def test_selection_per_prompt_with_ties_to_the_earliest():
    records = [
        {"prompt_id": "a", "completion": "1", "reward": 0.2},
        {"prompt_id": "b", "completion": "2", "reward": 0.9},
        {"prompt_id": "a", "completion": "3", "reward": 0.7},
        {"prompt_id": "a", "completion": "4", "reward": 0.7},
        {"prompt_id": "c", "completion": "5", "reward": -1.0},
    ]
    chosen = select_best_of_n(records)
    assert [r["completion"] for r in chosen] == ["3", "2", "5"]


def test_selection_scores_with_a_spec_when_records_are_unscored():
    records = [
        {"prompt_id": "q1", "completion": "Answer: 5", "answer": "4"},
        {"prompt_id": "q1", "completion": "Answer: 4", "answer": "4"},
        {"prompt_id": "q2", "completion": "Answer: x", "answer": "y"},
    ]
    chosen = select_best_of_n(records, spec={"verifier": "exact", "length_unit": "words"})
    assert [r["completion"] for r in chosen] == ["Answer: 4", "Answer: x"]
    assert chosen[0]["reward"] == 1.0 and chosen[0]["correct"] is True
    with pytest.raises(ValueError, match="give a spec"):
        select_best_of_n(records)


def test_report_compares_selection_with_mean_and_oracle():
    # q1: rewards favour the wrong, longer answer (a hacked reward); q2: the right one
    records = [
        {"prompt_id": "q1", "completion": "x", "num_tokens": 10, "reward": 0.1, "correct": True},
        {"prompt_id": "q1", "completion": "x", "num_tokens": 90, "reward": 0.9, "correct": False},
        {"prompt_id": "q2", "completion": "x", "num_tokens": 20, "reward": 0.8, "correct": True},
        {"prompt_id": "q2", "completion": "x", "num_tokens": 40, "reward": 0.3, "correct": None},
    ]
    r = best_of_n_report(records)
    assert (
        r["selected_accuracy"] == 0.5
        and r["mean_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
        and r["oracle_accuracy"] == 1.0
    )
    assert r["selected_mean_length"] == 55.0 and r["mean_length"] == 40.0 and r["unit"] == "tokens"
    assert r["theory"]["2"]["kl_nats"] == pytest.approx(math.log(2) - 0.5) and r["group_sizes"] == {"2": 2}
    json.dumps(r, allow_nan=False)


def test_cli_bon(tmp_path, capsys):
    src = tmp_path / "r.jsonl"
    src.write_text(
        "".join(
            json.dumps({"prompt_id": f"q{i // 4}", "completion": f"Answer: {i % 4}", "answer": "2"}) + "\n"
            for i in range(12)
        )
    )
    spec = tmp_path / "s.yaml"
    spec.write_text("verifier: exact\nlength_unit: words\n")
    out, selected = tmp_path / "o", tmp_path / "best.jsonl"
    assert main(["eval", "bon", str(src), "--spec", str(spec), "--selected", str(selected), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "KL(BoN || base)" in text and str(selected) in text and str(out / "bon.json") in text
    rows = [json.loads(line) for line in selected.read_text().splitlines()]
    assert len(rows) == 3 and all(r["completion"] == "Answer: 2" for r in rows)
    assert json.loads((out / "bon.json").read_text())["selected_accuracy"] == 1.0
    assert main(["eval", "bon", str(src), "--out", str(out)]) == 2  # unscored and no spec
