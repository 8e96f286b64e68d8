"""``relevance``: R³ (Kim & Seo 2024), hand-computed on a tiny local encoder whose embedding of a text is the
mean of its words' vectors (tests/relevance_fixture.py): cat, dog, sky are orthogonal with |v|² = 4."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rewardsmith.verifiers.relevance import cut, interpolate, length_incentive, repetition_penalty, words

sys.path.insert(0, str(Path(__file__).parent))


def test_words_are_nltk_wordpunct_tokens():
    assert words("Hello, world!! It's 3.5") == ["Hello", ",", "world", "!!", "It", "'", "s", "3", ".", "5"]
    assert words("") == []


def test_words_match_nltk_and_the_trigrams_match_nltk_ngrams():
    nltk = pytest.importorskip("nltk")
    texts = ["Hello, world!! It's 3.5", "naïve café — déjà vu...", "a\tb\n\nc", "x_y z-w (q) [r]?", ""]
    for text in texts:
        assert words(text) == nltk.wordpunct_tokenize(text)
        tokens = words(text)
        trigrams = [" ".join(t) for t in nltk.ngrams(tokens, 3)]
        assert repetition_penalty(tokens) == (len(set(trigrams)) / len(trigrams) if trigrams else 1.0)


def test_length_incentive_and_repetition_penalty_by_hand():
    assert length_incentive(words("a b c")) == pytest.approx(0.03)
    assert repetition_penalty(words("a b c a b c")) == pytest.approx(3 / 4)  # abc bca cab abc
    assert repetition_penalty(words("a a a a")) == pytest.approx(1 / 2)
    assert repetition_penalty(words("a b")) == 1.0  # no trigram
    assert repetition_penalty([]) == 1.0


def test_stop_strings_cut_the_response():
    assert cut("\n an answer\n\n\n\nUSER: more", ["\n\n\n\n"]) == "an answer"
    assert cut("a\n\n--b\n\n____c", ["\n\n____", "\n\n--"]) == "a"  # the earliest one
    assert cut("ASSISTANT: x", []) == "ASSISTANT: x"


def test_a_retriever_is_needed_only_for_relevance():
    from rewardsmith.registry import SpecError
    from rewardsmith.verifiers.relevance import RelevanceVerifier

    v = RelevanceVerifier(relevance_scaling=False)  # LI·RP only: no model loaded
    assert v.check(v.job("a b c a b c", None, {"prompt": "q", "qtype": None})).score == pytest.approx(0.06 * 0.75)
    with pytest.raises(SpecError, match="path"):
        RelevanceVerifier()


def test_interpolation_maps_0_to_3_5_onto_the_length_range():
    assert interpolate(0.0, 512) == 0.0
    assert interpolate(3.5, 512) == pytest.approx(5.12)
    assert interpolate(7.0, 100) == pytest.approx(2.0)  # not clipped, as in the authors' code


pytest.importorskip("transformers")
from relevance_fixture import build_encoder  # noqa: E402
from rewardsmith import load_spec  # noqa: E402
from rewardsmith.verifiers.relevance import RelevanceVerifier  # noqa: E402


@pytest.fixture(scope="module")
def enc(tmp_path_factory) -> Path:
    return build_encoder(tmp_path_factory.mktemp("contriever"))


def verifier(enc: Path, **kw) -> RelevanceVerifier:
    return RelevanceVerifier(path=str(enc), tokenizer=str(enc / "tokenizer"), **kw)


def score(v: RelevanceVerifier, prompt: str, response: str, qtype: str | None = "OPENENDED", answer=None):
    return v.check(v.job(response, answer, {"prompt": prompt, "qtype": qtype}))


def test_relevance_is_the_dot_product_of_mean_pooled_embeddings(enc):
    v = verifier(enc, batch_size=2)
    # E(cat dog) = (1, −1, 0, 0); E(cat sky) = (1, 0, 0, −1); padding is left out of the mean
    got = v.relevance([("cat", "cat dog"), ("cat sky", "cat dog"), ("dog", "cat cat sky"), ("sky", "")])
    assert got.tolist() == pytest.approx([2.0, 1.0, 0.0, 0.0], abs=1e-5)


def test_open_ended_constrained_and_repetition_by_hand(enc):
    v = verifier(enc)
    assert score(v, "cat", "cat dog").score == pytest.approx(2.0 * 0.02 * 1.0, abs=1e-6)  # r_x·LI·RP
    assert score(v, "cat", "cat cat cat cat").score == pytest.approx(4.0 * 0.04 * 0.5, abs=1e-6)
    # constrained: F(r(reference, response))·RP, F(2) = 2/3.5·5.12; the query is not used
    got = score(v, "sky", "cat dog", "CONSTRAINED", answer="dog").score
    assert got == pytest.approx(2.0 / 3.5 * 5.12, abs=1e-5)


def test_switches_follow_the_authors_flags(enc):
    assert score(verifier(enc, relevance_scaling=False), "sky", "cat dog").score == pytest.approx(0.02)
    assert score(verifier(enc, length_incentive=False), "cat", "cat dog").score == pytest.approx(2.0, abs=1e-5)
    no_rp = verifier(enc, repetition_penalty=False)
    assert score(no_rp, "cat", "cat cat cat cat").score == pytest.approx(0.16, abs=1e-5)
    # without branching a constrained query is scored as an open-ended one; no qtype needed
    plain = verifier(enc, reward_branching=False)
    assert score(plain, "cat", "cat dog", None).score == pytest.approx(0.04, abs=1e-5)


def test_relevance_reads_the_whole_response_length_and_repetition_the_cut_one(enc):
    v = verifier(enc)
    # E(cat dog sky×4) = (6, 2, −4, −4)/6, · E(cat) = 4/6; LI counts "cat dog" only
    got = score(v, "cat", "cat dog\n\n\n\nsky sky sky sky").score
    assert got == pytest.approx(4 / 6 * 0.02 * 1.0, abs=1e-5)


def test_copying_the_query_is_what_the_repetition_penalty_cuts(enc):
    """Relevance alone rewards echoing the query (the authors' reward hacking); with LI, echoing it many times
    pays more; RP cuts that repetition."""
    copy3 = "cat sky cat sky cat sky"
    with_rp, without = verifier(enc), verifier(enc, repetition_penalty=False)
    # E(q) = E(copy) = (cat+sky)/2 → relevance 2; LI 0.06; trigrams: 2 unique of 4
    assert score(without, "cat sky", copy3).score == pytest.approx(2.0 * 0.06, abs=1e-5)
    assert score(with_rp, "cat sky", copy3).score == pytest.approx(2.0 * 0.06 * 0.5, abs=1e-5)


def test_empty_response_scores_zero_and_bad_records_are_unknown(enc):
    v = verifier(enc)
    assert score(v, "cat", "").score == 0.0
    assert score(v, "cat", "cat", qtype=None).status == "bad_reference"  # branching needs the query type
    assert score(v, "cat", "cat", qtype="open").status == "bad_reference"
    assert score(v, "cat", "cat", "CONSTRAINED", answer=None).status == "bad_reference"


def test_through_a_spec_with_records(enc):
    pipe = load_spec(
        {
            "verifier": {"name": "relevance", "path": str(enc), "tokenizer": str(enc / "tokenizer")},
            "length_unit": "words",
        }
    )
    out = pipe.score_records(
        [
            {"prompt_id": "a", "prompt": "cat", "completion": "cat dog", "meta": {"qtype": "OPENENDED"}},
            {
                "prompt_id": "b",
                "prompt": "sky",
                "completion": "cat dog",
                "answer": "dog",
                "meta": {"qtype": "CONSTRAINED"},
            },
        ]
    )
    assert [r["reward"] for r in out] == pytest.approx([0.04, 2.0 / 3.5 * 5.12], abs=1e-5)
