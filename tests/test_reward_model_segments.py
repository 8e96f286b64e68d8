"""Fine-grained (segment-level) rewards of ``reward_model`` (Wu et al. 2023): the authors' sentence and
sub-sentence cutting, and per-segment rewards from tiny hand-weighted classifiers (tests/rm_fixture.py:
r = the score of the text's last token; punctuation is its own token)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from rewardsmith.registry import SpecError
from rewardsmith.verifiers.segments import sentences, subsentences

sys.path.insert(0, str(Path(__file__).parent))


def texts(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


# ---------------------------------------------------------------------------------------------- cutting


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Good. Bad!  Ok?", ["Good.", "Bad!", "Ok?"]),
        ("good bad ok", ["good bad ok"]),  # no punctuation: one sentence
        ("It is good. And then the", ["It is good.", "And then the"]),  # truncated last sentence kept
        ("line one\nline two\n\n", ["line one", "line two"]),  # line breaks end sentences; blank ones dropped
        ("Pi is 3.14 today.", ["Pi is 3.14 today."]),  # a decimal point is not an end
        ('He said "hi." Then left.', ['He said "hi."', "Then left."]),  # closing quote stays with its sentence
        ("Wait... what?! Yes", ["Wait...", "what?!", "Yes"]),
        ("e.g. this", ["e.g.", "this"]),  # no abbreviation list (spaCy's parser may keep it whole)
        ("  lead and trail  ", ["lead and trail"]),
        ("", []),
        (" \n\t ", []),
    ],
)
def test_sentences(text, expected):
    assert texts(text, sentences(text)) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        # a split after ",;!?" when the running sub-sentence has ≥ 5 words and more than 5 words follow
        ("a b c d e, f g h i j, k l m n o p", ["a b c d e,", "f g h i j,", "k l m n o p"]),
        # a short middle sub-sentence ("f g,") merges into the previous one
        ("a b c d e, f g, h i j k l m", ["a b c d e, f g,", "h i j k l m"]),
        # a short first sub-sentence runs on
        ("a b, c d e f g h i j", ["a b, c d e f g h i j"]),
        # 5 words after the comma are not more than 5: no split
        ("a b c d e, f g h i j", ["a b c d e, f g h i j"]),
        ("a b c d e; f g h i j k", ["a b c d e;", "f g h i j k"]),
        # sub-sentences stay within sentences; each sentence end is a sub-sentence end
        ("a b c d e, f g h i j k. Next one", ["a b c d e,", "f g h i j k.", "Next one"]),
        ("no punctuation at all here", ["no punctuation at all here"]),
        ("", []),
    ],
)
def test_subsentences_follow_the_authors_rule(text, expected):
    assert texts(text, subsentences(text)) == expected


def test_every_sentence_end_is_a_subsentence_end():
    text = "a b c d e, f g h i j k l. So, m n o p q, r s t u v w! x y"
    assert {e for _, e in sentences(text)} <= {e for _, e in subsentences(text)}


# ---------------------------------------------------------------------------------------------- rewards

pytest.importorskip("transformers")
from rewardsmith import load_spec  # noqa: E402
from rewardsmith.verifiers.reward_model import RewardModel  # noqa: E402
from rm_fixture import build_rm  # noqa: E402

A_SCORES = {"!": 0.5, "?": -0.4, ",": 0.2, ".": -0.2}
B_SCORES = {"!": 0.0, "?": 0.0, ",": 0.4, ".": 0.6, "ok": -0.3}  # the same vocabulary: one tokenizer serves both


@pytest.fixture(scope="module")
def rm_a(tmp_path_factory) -> Path:
    return build_rm(tmp_path_factory.mktemp("rm_a"), A_SCORES)


@pytest.fixture(scope="module")
def rm_b(tmp_path_factory) -> Path:
    return build_rm(tmp_path_factory.mktemp("rm_b"), B_SCORES)


def member(path: Path, **kw) -> dict:
    return {"path": str(path), **kw}


def verifier(models: list[dict], segments: str = "sentence") -> RewardModel:
    return RewardModel(models=models, segments=segments, tokenizer=str(models[0]["path"]) + "/tokenizer")


def test_one_rm_per_sentence_scores_each_prefix(rm_a):
    v = verifier([member(rm_a)])
    (row,) = v.segment_rewards([("q", " good! bad? ok")])
    # prefixes " good!" → "!", " good! bad?" → "?", the whole → "ok"
    assert row.tolist() == pytest.approx([0.5, -0.4, 0.1], abs=1e-5)


def test_sign_rewards_and_weights_and_a_response_level_model(rm_a, rm_b):
    signed = verifier([member(rm_a, positive_reward=0.3, negative_reward=-0.3)])
    assert signed.segment_rewards([("q", " good! bad? ok")])[0].tolist() == pytest.approx([0.3, -0.3, 0.3])
    mixed = verifier([member(rm_a), member(rm_b, segments="response", weight=2.0)])
    # rm_b reads the whole response (last word "ok": −0.3) and rewards the last segment: 2·(−0.3)
    assert mixed.segment_rewards([("q", " good! bad? ok")])[0].tolist() == pytest.approx([0.5, -0.4, -0.5], abs=1e-5)


def test_mixed_granularities_partition_by_subsentences(rm_a, rm_b):
    v = verifier(
        [
            member(rm_a),  # sentences
            member(rm_b, segments="subsentence", weight=0.5),
            member(rm_a, segments="response", weight=2.0, center=0.5),
        ]
    )
    (row,) = v.segment_rewards([("q", " so so so so good, so so so so so bad. ok")])
    # segments: "…good," | "…bad." | "ok"
    # rm_a per sentence: "." → −0.2 on segment 1, "ok" → 0.1 on segment 2
    # rm_b per sub-sentence ×0.5: "," 0.4 → 0.2, "." 0.6 → 0.3, "ok" −0.3 → −0.15
    # rm_a on the response: 2·(0.1 − 0.5) = −0.8 on the last segment
    assert row.tolist() == pytest.approx([0.2, -0.2 + 0.3, 0.1 - 0.15 - 0.8], abs=1e-5)


def test_edge_cases_empty_unpunctuated_truncated(rm_a):
    with_response = verifier([member(rm_a), member(rm_a, segments="response", weight=2.0, center=0.5)])
    plain = verifier([member(rm_a)])
    # empty: one empty segment; only the response-level model rewards it (prompt "q" alone scores 0)
    assert with_response.segment_rewards([("q", "")])[0].tolist() == pytest.approx([-1.0], abs=1e-5)
    assert plain.segment_rewards([("q", "")])[0].tolist() == [0.0]
    assert plain.segment_rewards([("q", " good bad ok")])[0].tolist() == pytest.approx([0.1], abs=1e-5)
    # cut off mid-sentence: the unfinished tail is a segment of its own
    assert plain.segment_rewards([("q", " good! so so")])[0].tolist() == pytest.approx([0.5, 0.3], abs=1e-5)


def spec(rm_a: Path, rm_b: Path, **extra) -> dict:
    return {
        "verifier": {
            "name": "reward_model",
            "segments": "sentence",
            "tokenizer": str(rm_a / "tokenizer"),
            "models": [member(rm_a), member(rm_b, segments="response", weight=2.0)],
        },
        "length_unit": "words",
        **extra,
    }


def test_pipeline_writes_dense_segments_summing_to_the_reward(rm_a, rm_b):
    pipe = load_spec(spec(rm_a, rm_b))
    recs = [
        {"prompt_id": "p", "prompt": "q", "completion": " good! bad? ok"},
        {"prompt_id": "p", "prompt": "q", "completion": ""},
    ]
    out = pipe.score_records(recs)
    assert out[0]["dense"]["unit"] == "segment"
    assert out[0]["dense"]["rewards"] == pytest.approx([0.5, -0.4, -0.5], abs=1e-5)
    assert out[0]["reward"] == pytest.approx(-0.4, abs=1e-5)
    assert out[1]["dense"]["rewards"] == pytest.approx([0.0], abs=1e-5)  # rm_b("q") = 0
    assert out[1]["reward"] == pytest.approx(0.0, abs=1e-5)


def test_shaping_moves_the_last_segment_so_rows_still_sum(rm_a, rm_b):
    out = load_spec(spec(rm_a, rm_b, shaping=[{"name": "centered"}])).score_records(
        [{"prompt_id": "p", "prompt": "q", "completion": " good! bad? ok", "meta": {"ref_scores": [0.1]}}]
    )
    assert out[0]["reward"] == pytest.approx(-0.4 - 0.1, abs=1e-5)  # centered: r − r_ref
    assert out[0]["dense"]["rewards"] == pytest.approx([0.5, -0.4, -0.6], abs=1e-5)


def test_references_get_the_same_fine_grained_score(rm_a, rm_b):
    pipe = load_spec(spec(rm_a, rm_b, shaping=[{"name": "par"}]))
    recs = [
        {
            "prompt_id": "p",
            "prompt": "q",
            "completion": " good! bad? ok",
            "meta": {"reference_responses": [" good! bad?"]},
        }
    ]
    ref_rows = pipe.verifiers["default"].segment_rewards([("q", " good! bad?")])
    # the reference: rm_a 0.5, −0.4 per sentence, rm_b("?") = 0 on the last
    assert ref_rows[0].sum() == pytest.approx(0.1, abs=1e-5)
    out = pipe.score_records(recs)
    assert out[0]["reward"] == pytest.approx(1 / (1 + math.exp(-(-0.4 - 0.1))), abs=1e-5)  # PAR: σ(r − r_ref)


def test_padding_with_rewarded_segments_raises_the_sum(rm_a):
    """The authors' reward is a sum over segments: a policy gains by adding segments its RMs score
    positively (Wu et al. balance this with negative rewards and a holistic RM). Documented; shown here."""
    v = verifier([member(rm_a, positive_reward=0.3, negative_reward=-0.3)])
    one, padded = v.segment_rewards([("q", " good!"), ("q", " good! good! good! good!")])
    assert one.sum() == pytest.approx(0.3) and padded.sum() == pytest.approx(1.2)


def test_a_failed_member_makes_the_row_unknown_with_no_segments(rm_a):
    from test_server import free_port

    pipe = load_spec(
        {
            "verifier": {
                "name": "reward_model",
                "segments": "sentence",
                "tokenizer": str(rm_a / "tokenizer"),
                "timeout_s": 2,
                "models": [member(rm_a), {"url": f"http://127.0.0.1:{free_port()}/get_reward"}],
            },
            "length_unit": "words",
        }
    )
    (out,) = pipe.score_records([{"prompt_id": "p", "prompt": "q", "completion": " good! bad?"}])
    assert out["reward"] is None and out["status"] == "judge_failed" and out["dense"]["rewards"] == []


def test_bad_options_are_refused(rm_a):
    base = {"name": "reward_model", "tokenizer": str(rm_a / "tokenizer")}
    with pytest.raises(SpecError, match="segments"):  # member options without the verifier's segments
        load_spec({"verifier": {**base, "models": [member(rm_a, weight=2.0)]}})
    with pytest.raises(SpecError, match="ensemble"):
        load_spec({"verifier": {**base, "segments": "sentence", "path": str(rm_a), "ensemble": "min"}})
    with pytest.raises(SpecError, match="both"):
        load_spec({"verifier": {**base, "segments": "sentence", "models": [member(rm_a, positive_reward=1.0)]}})
    with pytest.raises(SpecError, match="dense"):  # two per-unit outputs in one spec
        load_spec(
            {
                "verifier": {**base, "segments": "sentence", "path": str(rm_a)},
                "shaping": [{"name": "prm_clip", "eta": 0.1}],
            }
        )
    with pytest.raises(SpecError, match="not per turn"):  # per-turn advantages beside per-segment rewards
        load_spec({"verifier": {**base, "segments": "sentence", "path": str(rm_a)}, "advantage": {"name": "turn_grpo"}})
