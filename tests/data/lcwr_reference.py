"""Regenerates the fixed annotation file of the `eval lcwr` cross-check and AlpacaEval's numbers on it.

    python tests/data/lcwr_reference.py annotations     # writes lcwr_annotations.jsonl (seeded, procedural)
    pip install --target /tmp/ae_pkgs --no-deps alpaca_eval==0.6.6 \
        patsy fire python-dotenv termcolor tiktoken "setuptools<81"
    PYTHONPATH=/tmp/ae_pkgs python tests/data/lcwr_reference.py alpaca_eval   # writes lcwr_alpaca_eval_reference.json

The file holds two models judged against one baseline on the same instructions, a verbose and a concise
variant of the baseline judged against it (AlpacaEval's gamed-baseline rows) and a given instruction
difficulty. AlpacaEval 0.6.6's `get_length_controlled_winrate` downloads its gamed rows and difficulties from
its hub dataset; here its download function is pointed at a CSV built from the file's own gamed rows, in
the columns its `_get_featurized_data` reads, so that everything else runs as released.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
ANNOTATIONS = HERE / "lcwr_annotations.jsonl"
REFERENCE = HERE / "lcwr_alpaca_eval_reference.json"
N_INSTRUCTIONS = 200
VARIANTS = ("base_concise", "base_verbose")  # sorted: AlpacaEval's df_gamed order = rewardsmith's


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def make_annotations(seed: int = 13) -> list[dict]:
    """Per instruction a difficulty and a base length; a judge with P(first wins) = sigmoid(quality gap +
    difficulty + 1.5·tanh(Δlen/120)), verdicts hard (1/2), tied (1.5 or 0) or soft (in between)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 0.8, N_INSTRUCTIONS)
    base_len = rng.normal(180, 50, N_INSTRUCTIONS).clip(20).astype(int)

    def verdict(z: float) -> float:
        u = rng.random()
        if u < 0.08:
            return float(rng.choice([1.5, 0.0]))  # AlpacaEval writes ties either way
        if u < 0.2:
            return round(1.0 + float(sigmoid(z + rng.normal(0, 0.5))), 4)  # a soft judgement
        return 2.0 if rng.random() < sigmoid(z) else 1.0

    rows = []
    for variant, shift in zip(VARIANTS, (-80, 120)):
        for i in range(N_INSTRUCTIONS):
            length = max(5, int(base_len[i] + shift + rng.normal(0, 40)))
            pref_12 = verdict(1.5 * np.tanh((length - base_len[i]) / 120))
            rows.append(
                {
                    "instruction_id": i,
                    "model": variant,
                    "gamed_baseline": True,
                    "difficulty": float(difficulty[i]),
                    "output_model": "v" * length,
                    "output_base": "b" * int(base_len[i]),
                    "preference_12": pref_12,
                }
            )
    for model, quality, shift in (("verbose_model", 0.2, 150), ("concise_model", 0.6, -30)):
        for i in range(N_INSTRUCTIONS):
            length = max(5, int(base_len[i] + shift + rng.normal(0, 60)))
            pref_12 = verdict(quality + difficulty[i] + 1.5 * np.tanh((length - base_len[i]) / 120))
            rows.append(
                {
                    "instruction_id": i,
                    "model": model,
                    "difficulty": float(difficulty[i]),
                    "output_model": "m" * length,
                    "output_base": "b" * int(base_len[i]),
                    "preference_12": pref_12,
                }
            )
    return rows


def alpaca_eval_numbers(rows: list[dict]) -> dict:
    import pandas as pd
    import sklearn
    from alpaca_eval.metrics import glm_winrate

    gamed = pd.DataFrame([r for r in rows if r.get("gamed_baseline")])
    parts = []
    for variant in VARIANTS:
        g = gamed[gamed["model"] == variant]
        delta = g["output_base"].str.len() - g["output_model"].str.len()  # AlpacaEval: len(output_1) - len(output_2)
        pref = g["preference_12"].replace({0.0: 1.5}) - 1
        parts.append(
            pd.DataFrame(
                {
                    "index": g["instruction_id"].to_numpy(),
                    "preference": pref.to_numpy(),
                    "std_delta_len": (delta / delta.std()).to_numpy(),
                    "instruction_difficulty": g["difficulty"].to_numpy(),
                    "not_gamed_baseline": False,
                    "model": variant,
                }
            )
        )
    with tempfile.TemporaryDirectory() as tmp:
        gamed_csv = Path(tmp) / "df_gamed.csv"
        pd.concat(parts).to_csv(gamed_csv, index=False)
        glm_winrate.hf_hub_download = lambda **_: str(gamed_csv)
        models = {}
        for model in sorted({r["model"] for r in rows if not r.get("gamed_baseline")}):
            own = [r for r in rows if r["model"] == model and not r.get("gamed_baseline")]
            df = pd.DataFrame(
                {
                    "output_1": [r["output_base"] for r in own],
                    "output_2": [r["output_model"] for r in own],
                    "preference": [r["preference_12"] for r in own],
                    "generator_1": "base",
                    "generator_2": model,
                    "annotator": "synthetic",
                },
                index=[r["instruction_id"] for r in own],
            )
            m = glm_winrate.get_length_controlled_winrate(df, save_weights_dir=None)
            models[model] = {
                "win_rate": float(m["win_rate"]),
                "length_controlled_winrate": float(m["length_controlled_winrate"]),
            }
    import alpaca_eval

    return {
        "command": "PYTHONPATH=/tmp/ae_pkgs python tests/data/lcwr_reference.py alpaca_eval",
        "alpaca_eval": alpaca_eval.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "models": models,
    }


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "annotations":
        ANNOTATIONS.write_text("".join(json.dumps(r) + "\n" for r in make_annotations()))
    elif what == "alpaca_eval":
        rows = [json.loads(line) for line in ANNOTATIONS.read_text().splitlines()]
        REFERENCE.write_text(json.dumps(alpaca_eval_numbers(rows), indent=2) + "\n")
    else:
        sys.exit("usage: lcwr_reference.py annotations | alpaca_eval")
