"""TRL's multi-turn paths through ``reward_funcs``: the tool-calling loop's message completions and a
``rollout_func``'s ``completion_messages`` become trajectory records (the GRPO run itself: test_lab_multiturn)."""

import pytest

from rewardsmith.integrations.trl import reward_funcs, trajectory

EXACT = {"verifier": {"name": "exact", "extract": ["hash"]}, "length_unit": "words"}
PER_CALL = {"verifier": {"name": "tool_call", "aggregate": "mean"}, "length_unit": "words"}
GOLD = '[{"name": "calculator", "arguments": {"expression": "3+5"}}]'


def call(expr):
    """An assistant turn as TRL's tool loop leaves it (``parse_response``: arguments parsed to an object)."""
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"type": "function", "function": {"name": "calculator", "arguments": {"expression": expr}}}],
    }


def tool(result):
    return {"role": "tool", "name": "calculator", "content": result}  # TRL's tool message: no call id


PROMPT = [{"role": "user", "content": "3+5="}]


def test_tool_loop_completions_are_scored_on_the_last_assistant_turn():
    (fn,) = reward_funcs(EXACT)
    completions = [
        [call("3+5"), tool("8"), {"role": "assistant", "content": "####8"}],
        [call("3+5"), tool("8"), {"role": "assistant", "content": "####9"}],
        # the tool's result holds "####8"; the policy never answered: no reward for the tool's text
        [call("3+5"), tool("####8"), {"role": "assistant", "content": "no idea"}],
    ]
    assert fn(prompts=[PROMPT] * 3, completions=completions, answer=["8"] * 3) == [1.0, 0.0, 0.0]


def test_per_call_credit_reads_the_calls_of_every_turn():
    (fn,) = reward_funcs(PER_CALL)
    right = [call("3+5"), tool("8"), {"role": "assistant", "content": "####8"}]
    spam = [call("3+5"), tool("8"), call("8-5"), tool("3"), {"role": "assistant", "content": "####8"}]
    wrong_name = [
        {**call("3+5"), "tool_calls": [{"type": "function", "function": {"name": "search", "arguments": {}}}]},
        tool("?"),
        {"role": "assistant", "content": "####8"},
    ]
    wrong_value = [call("3+4"), tool("7"), {"role": "assistant", "content": "####8"}]
    none = [{"role": "assistant", "content": "####8"}, {"role": "assistant", "content": "####8"}]
    got = fn(prompts=[PROMPT] * 5, completions=[right, spam, wrong_name, wrong_value, none], tool_calls=[GOLD] * 5)
    # ToolRL R_correct per call = 6·S/S_max − 3 with S = name match + key match + value match (S_max 3 here), mean
    # over max(#made, #reference) positions, then (R + 3)/6: right 3 → 1; spam [3, −3] → 0.5; wrong name S 0 → 0;
    # wrong value S 2 → R 1 → 2/3; no call [−3] → 0
    assert got == [1.0, 0.5, 0.0, 2 / 3, 0.0]


def test_rollout_func_turns_and_single_turn_forms():
    (fn,) = reward_funcs(EXACT)
    turns = [[call("3+5"), tool("8"), {"role": "assistant", "content": "####8"}], None]
    # a rollout_func returns plain decoded text as the completion and the turns beside it; None: single turn
    got = fn(prompts=["3+5=", "3+5="], completions=["x", "####8"], completion_messages=turns, answer=["8", "8"])
    assert got == [1.0, 1.0]
    assert trajectory("q", [{"role": "assistant", "content": "####8"}]) is None  # TRL's single-turn chat form
    assert trajectory("q", "####8") is None
    assert trajectory("q", [call("1+1")]) == [{"role": "user", "content": "q"}, call("1+1")]


def test_batches_differing_only_in_tool_calls_are_scored_apart():
    (fn,) = reward_funcs(PER_CALL)
    a = [call("3+5"), tool("8"), {"role": "assistant", "content": "####8"}]
    b = [call("5+3"), tool("8"), {"role": "assistant", "content": "####8"}]  # same text, other arguments
    first = fn(prompts=[PROMPT], completions=[a], tool_calls=[GOLD])
    second = fn(prompts=[PROMPT], completions=[b], tool_calls=[GOLD])
    assert first == [1.0] and second[0] < 1.0


def test_messages_parsed_by_trls_own_response_parser():
    """The assistant turns as TRL's tool loop builds them: ``parse_response`` on the generated ids (Qwen3's chat
    template and TRL's response schema on a byte-level tokenizer built here), the tool result as TRL appends it."""
    pytest.importorskip("jmespath")  # transformers < 5.13 parses with the legacy schema, which needs it
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from trl.chat_template_utils import add_response_schema, parse_response, qwen3_chat_template

    core = Tokenizer(
        models.BPE(vocab={c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}, merges=[])
    )
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<tool_call>", "</tool_call>"]})
    tok.chat_template = qwen3_chat_template
    add_response_schema(tok)

    def generated(text):
        return parse_response(tok, tok(text + "<|im_end|>", add_special_tokens=False)["input_ids"])

    calling = generated('<tool_call>\n{"name": "calculator", "arguments": {"expression": "3+5"}}\n</tool_call>')
    assert calling["tool_calls"][0]["function"]["arguments"] == {"expression": "3+5"}
    completion = [calling, tool("8"), generated("Answer: 8")]
    (outcome,) = reward_funcs({"verifier": "exact", "length_unit": "words"})
    (per_call,) = reward_funcs(PER_CALL)
    assert outcome(prompts=[PROMPT], completions=[completion], answer=["8"]) == [1.0]
    assert per_call(prompts=[PROMPT], completions=[completion], tool_calls=[GOLD]) == [1.0]
