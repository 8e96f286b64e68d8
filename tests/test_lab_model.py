"""The lab's tokenizer, model construction and SFT cache key."""

import json

import pytest

from rewardsmith.lab.model import ModelConfig, build_model, build_tokenizer, count_parameters
from rewardsmith.lab.sft import SFTConfig, cache_key, encode_example
from rewardsmith.lab.tasks import CarryStyle, TraceStyle, generate_problems, necessary_trace, overthinking_trace


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_round_trip_and_one_token_per_symbol(tok):
    import random

    rng = random.Random(0)
    for p in generate_problems(30, seed=0):
        text = p.prompt + overthinking_trace(
            p.digits, rng, TraceStyle(check_rate=0.5, restate_rate=0.5, guess_rate=0.2)
        )
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert tok.unk_token_id not in ids
    ids = tok("<think>3+5=8;chk8-5=3ok;so8;</think>####8", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == [
        "<think>",
        "3",
        "+",
        "5",
        "=",
        "8",
        ";",
        "chk",
        "8",
        "-",
        "5",
        "=",
        "3",
        "ok",
        ";",
        "so",
        "8",
        ";",
        "</think>",
        "####",
        "8",
    ]


def test_necessary_trace_is_6k_minus_2_tokens(tok):
    for k in range(2, 8):
        assert len(tok(necessary_trace([1] * k), add_special_tokens=False)["input_ids"]) == 6 * k - 2


def test_unknown_text_maps_to_unk_and_left_padding(tok):
    ids = tok("x3", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.unk_token_id and tok.decode(ids[1:]) == "3"
    batch = tok(["1+2=", "1+2+3="], padding=True, add_special_tokens=False)
    assert tok.padding_side == "left"
    assert batch["input_ids"][0][:2] == [tok.pad_token_id] * 2 and batch["attention_mask"][0] == [0, 0, 1, 1, 1, 1]


def test_encode_example_masks_the_prompt(tok):
    ids, labels = encode_example(tok, "1+2=", "<think>1+2=3;</think>####3")
    assert len(ids) == len(labels) == 4 + 10 + 1
    assert labels[:4] == [-100] * 4 and labels[4:] == ids[4:] and ids[-1] == tok.eos_token_id


def test_model_from_config_with_generation_ids(tok):
    m = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    assert m.config.vocab_size == len(tok)
    assert m.generation_config.pad_token_id == tok.pad_token_id and m.generation_config.eos_token_id == tok.eos_token_id
    m2 = build_model(ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tok, seed=0)
    assert all((a == b).all() for a, b in zip(m.parameters(), m2.parameters()))
    assert 10_000 < count_parameters(m) < 100_000
    assert 400_000 < count_parameters(build_model(ModelConfig(), tok, seed=0)) < 900_000


def test_cache_key_is_stable_and_sensitive():
    cfg = SFTConfig()
    assert cache_key(cfg, 0) == cache_key(SFTConfig(), 0)
    assert len(cache_key(cfg, 0)) == 16
    assert cache_key(cfg, 0) != cache_key(cfg, 1)
    assert cache_key(cfg, 0) != cache_key(SFTConfig(style=CarryStyle(safe_check_rate=0.4)), 0)
    chain = SFTConfig(task="chain")
    assert chain.style == TraceStyle() and cfg.style == CarryStyle()
    assert cache_key(chain, 0) != cache_key(cfg, 0)
    assert cache_key(chain, 0) != cache_key(SFTConfig(task="chain", style=TraceStyle(check_rate=0.4)), 0)
    assert cache_key(cfg, 0) != cache_key(SFTConfig(model=ModelConfig(hidden_size=64)), 0)
    json.dumps(cfg.to_dict())  # the key is built from plain JSON


def test_sft_config_style_matches_its_task():
    with pytest.raises(ValueError):
        SFTConfig(style=TraceStyle())  # the default task is carry
    with pytest.raises(ValueError):
        SFTConfig(task="chain", style=CarryStyle())
    with pytest.raises(ValueError):
        SFTConfig(task="sums")


def test_annotated_tokens_match_the_tokenizer(tok):
    import random

    from rewardsmith.lab.tasks import annotate, sft_trace

    rng = random.Random(1)
    for p in generate_problems(200, seed=1):
        text = sft_trace(p, rng, CarryStyle())
        assert annotate(text).tokens == len(tok(text, add_special_tokens=False)["input_ids"])
