import numpy as np
import pytest

from rewardsmith import Batch, RecordError
from rewardsmith.batch import group_reduce


def recs(**cols):
    n = len(next(iter(cols.values())))
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def test_groups_follow_first_appearance_even_interleaved():
    b = Batch.from_records(recs(prompt_id=["b", "a", "b", 3, "a"], completion=["x"] * 5))
    assert b.group.tolist() == [0, 1, 0, 2, 1]
    assert b.group_keys == ["b", "a", "3"]
    assert b.group_sizes.tolist() == [2, 2, 1]


def test_lengths_in_each_unit():
    b = Batch.from_records(recs(prompt_id=["q", "q"], completion=["one two  three", ""], num_tokens=[5, 0]))
    length, unit = b.lengths("tokens")
    assert unit == "tokens" and length.tolist() == [5.0, 0.0]
    assert b.lengths("words")[0].tolist() == [3.0, 0.0]
    assert b.lengths("chars")[0].tolist() == [14.0, 0.0]


def test_tokens_fall_back_to_words_and_say_so():
    b = Batch.from_records(recs(prompt_id=["q"], completion=["a b c"]))
    length, unit = b.lengths("tokens")
    assert unit == "words" and length.tolist() == [3.0]


def test_tokens_from_token_ids_or_tokenizer():
    b = Batch.from_records(recs(prompt_id=["q", "q"], completion=["a b", "c"], meta=[{"token_ids": [1, 2, 3]}, {}]))
    length, unit = b.lengths("tokens", tokenizer=lambda s: list(s))
    assert unit == "tokens" and length.tolist() == [3.0, 1.0]


def test_mixed_token_counts_are_an_error():
    b = Batch.from_records(recs(prompt_id=["q", "q"], completion=["a", "b"], num_tokens=[3, None]))
    with pytest.raises(RecordError, match="1 of 2 records have no num_tokens"):
        b.lengths("tokens")


def test_unknown_unit():
    b = Batch.from_records(recs(prompt_id=["q"], completion=["a"]))
    with pytest.raises(ValueError, match="allowed: tokens, words, chars"):
        b.lengths("bytes")


def test_group_reduce_hand_computed():
    g = np.array([0, 1, 0, 2, 1])
    v = np.array([1.0, 4.0, 3.0, 5.0, 2.0])
    assert group_reduce(v, g, 4, "sum").tolist() == [4.0, 6.0, 5.0, 0.0]
    assert group_reduce(v, g, 4, "count").tolist() == [2.0, 2.0, 1.0, 0.0]
    mean = group_reduce(v, g, 4, "mean")
    assert mean[:3].tolist() == [2.0, 3.0, 5.0] and np.isnan(mean[3])
    assert group_reduce(v, g, 3, "min").tolist() == [1.0, 2.0, 5.0]
    m = group_reduce(v, g, 3, "max", where=v < 4)
    assert m[:2].tolist() == [3.0, 2.0] and np.isnan(m[2])


def test_empty_batch():
    b = Batch.from_records([])
    assert len(b) == 0 and b.n_groups == 0
    assert b.lengths("words")[0].shape == (0,)
