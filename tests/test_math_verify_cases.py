"""Math-Verify's own regression cases, given to rewardsmith's ``math`` verifier as whole completions.

The cases live in ``tests/data/math_verify_cases.jsonl`` (converted offline from Math-Verify's
``tests/test_all.py`` and ``tests/test_numina_cases.py``; source commit in its header line and
in ``tests/data/README.md``). Acceptance (issue 10): at least 95% agree among the cases whose
prediction holds at most one ``\\boxed{}``; cases about math-verify's own API options are left
out, each with its reason in the data.
"""

import json
from pathlib import Path

from rewardsmith.verifiers.base import NO_ANSWER
from rewardsmith.verifiers.math import MathVerifier

DATA = Path(__file__).parent / "data" / "math_verify_cases.jsonl"


def load_cases() -> tuple[dict, list[dict]]:
    header, *rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return header, rows


def rewardsmith_says(row: dict) -> int | None:
    # A generous inner timeout: this checks reading, not speed, on a possibly loaded machine.
    v = MathVerifier(float_rounding=row["precision"], inner_timeout_s=5)
    job = v.job(row["prediction"], row["gold"], {})
    verdict = None if job is None else v.check(job)
    if verdict is None or verdict.status == NO_ANSWER:
        return 0
    return None if verdict.correct is None else int(verdict.correct)


def test_data_file_is_complete_and_names_its_source():
    header, rows = load_cases()
    assert header["source"] == "https://github.com/huggingface/Math-Verify" and len(header["commit"]) == 40
    assert header["cases"] == len(rows) > 200
    assert all(set(r) >= {"id", "gold", "prediction", "expected"} and r["expected"] in (0, 1) for r in rows)
    assert all(r["excluded"] for r in rows if "excluded" in r)


def test_math_verify_regression_cases_agree():
    _, rows = load_cases()
    scope = [r for r in rows if "excluded" not in r and r["prediction"].count("\\boxed") <= 1]
    disagree = [(r["id"], r["expected"], got) for r in scope if (got := rewardsmith_says(r)) != r["expected"]]
    rate = 1 - len(disagree) / len(scope)
    print(f"Math-Verify cases (<= 1 box, {len(scope)}): {rate:.1%} agree; disagree: {disagree}")
    assert rate >= 0.95, disagree
