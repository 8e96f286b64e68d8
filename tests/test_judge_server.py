"""The judge against a real OpenAI-compatible server (``transformers serve`` on a tiny local model).

The random model's replies are random text, so its judgements are unknown (unparseable); with it
the round trip is checked: requests really made, usage counted, the disk cache answering a rerun
with zero requests, budgets, ``score``/TRL/``serve`` carrying unknowns as null, and a server killed
mid-batch leaving a finished run with unknown rewards. A second model, scripted through its
weights to reply "Score: 7", gives a valid judgement through the same server. Every reply form
(valid, malformed, refused) is parsed from hand-written strings in test_judge.py.
"""

import json
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("openai")  # transformers serve needs it
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from judge_server import (  # noqa: E402
    CHATML,
    build_scripted_chat_model,
    build_tiny_chat_model,
    free_port,
    merges_spelling,
    start_server,
    stop_server,
)
from rewardsmith import load_spec  # noqa: E402
from rewardsmith.verifiers.base import JUDGE_FAILED  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_chat_model(tmp_path_factory.mktemp("judge-model") / "tiny-chat")


@pytest.fixture(scope="module")
def scripted_dir(tmp_path_factory):
    return build_scripted_chat_model(tmp_path_factory.mktemp("judge-model") / "scripted", "Score: 7")


@pytest.fixture(scope="module")
def server(model_dir, scripted_dir):
    """One server for both models (it loads a local model by the path a request names)."""
    port = free_port()
    proc = start_server(None, port)
    yield f"http://127.0.0.1:{port}/v1", str(model_dir)
    stop_server(proc)


def test_a_valid_judgement_through_the_real_server(server, scripted_dir, tmp_path):
    """The scripted model's greedy reply is "Score: 7": parsed, scored 6/9, cached."""
    url, _ = server
    spec = judge_spec(url, str(scripted_dir), max_tokens=16, cache_dir=str(tmp_path / "cache"))
    spec["base"] = {"correct": 1.0, "wrong": -1.0}
    with load_spec(spec) as pipe:
        scores = pipe.score(RECORDS)
        usage = pipe.verifiers["default"].usage()
    assert scores.status == ["ok"] * 4 and scores.details == ["score 7/10"] * 4
    assert scores.total.tolist() == pytest.approx([-1 + 2 * 6 / 9] * 4) and scores.correct.tolist() == [0.0] * 4
    assert scores.advantages.tolist() == [0.0] * 4  # equal rewards in each group
    assert usage["requests"] == 4 and usage["completion_tokens"] == 4 * 9  # "Score: 7" and the end-of-turn token
    with load_spec(spec) as pipe:
        assert pipe.score(RECORDS).total.tolist() == scores.total.tolist()
        assert pipe.verifiers["default"].usage()["requests"] == 0
    themis = judge_spec(url, str(scripted_dir), max_tokens=16, template="themis")  # no tool asked: judged at once
    with load_spec(themis) as pipe:
        assert pipe.score(RECORDS[:1]).details == ["score 7/10"] and pipe.verifiers["default"].usage()["requests"] == 1


def judge_spec(url, model, **extra):
    return {
        "verifier": {
            "name": "judge",
            "template": "pointwise",
            "base_url": url,
            "model": model,
            "max_tokens": 8,
            "max_retries": 0,
            "timeout_s": 60,
            "concurrency": 2,
            "api_key_env": None,
            **extra,
        },
        "advantage": {"name": "grpo"},
        "length_unit": "words",
    }


RECORDS = [
    {"prompt_id": f"q{i // 2}", "prompt": f"Name a colour ({i // 2}).", "completion": f"<think>hm</think>blue {i}"}
    for i in range(4)
]


def test_round_trip_counts_and_cache_rerun_makes_zero_requests(server, tmp_path):
    url, model = server
    spec = judge_spec(
        url, model, cache_dir=str(tmp_path / "cache"), price_input_per_mtok=1.0, price_output_per_mtok=2.0
    )
    with load_spec(spec) as pipe:
        scores = pipe.score(RECORDS)
        usage = pipe.verifiers["default"].usage()
    assert usage["requests"] == 4 and usage["cache_hits"] == 0 and usage["failed_requests"] == 0
    assert usage["completion_tokens"] == 4 * 8 and usage["prompt_tokens"] > 4 * 50  # counted from the server's usage
    assert usage["cost_usd"] == pytest.approx((usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 2.0) / 1e6)
    # the tiny model's reply is random text: unparseable, so unknown — null reward, no advantage
    assert scores.status == [JUDGE_FAILED] * 4 and all(d.startswith("unparseable judgement") for d in scores.details)
    assert [r["reward"] for r in scores.to_records(RECORDS)] == [None] * 4 and scores.advantages.tolist() == [0.0] * 4
    with load_spec(spec) as pipe:  # a fresh pipeline (no in-memory cache): the disk cache answers everything
        again = pipe.score(RECORDS)
        usage = pipe.verifiers["default"].usage()
    assert usage["requests"] == 0 and usage["cache_hits"] == 4 and again.details == scores.details


def test_budget_leaves_rows_unknown_and_counts_them(server, caplog):
    url, model = server
    with load_spec(judge_spec(url, model, max_requests=1, concurrency=1)) as pipe:
        with caplog.at_level("WARNING", logger="rewardsmith.judge"):
            scores = pipe.score(RECORDS)
        usage = pipe.verifiers["default"].usage()
    assert usage["requests"] == 1 and usage["over_budget"] == 3
    assert sum("over budget" in d for d in scores.details) == 3 and scores.summary()["judge_failed"] == 4
    assert "3 of 4 judgements not requested" in caplog.text


def test_a_slow_reply_times_out_as_unknown(server):
    url, model = server
    with load_spec(judge_spec(url, model, max_tokens=400, timeout_s=0.05, concurrency=1)) as pipe:
        scores = pipe.score(RECORDS[:2])
        usage = pipe.verifiers["default"].usage()
    assert scores.status == [JUDGE_FAILED] * 2 and usage["failed_requests"] == 2
    assert all(d.startswith("judge request failed") and "timeout" in d.lower() for d in scores.details), scores.details


def test_score_cli_trl_and_serve_carry_unknowns_as_null(server, tmp_path):
    url, model = server
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(judge_spec(url, model, cache_dir=str(tmp_path / "cache"))))
    rollouts = tmp_path / "r.jsonl"
    rollouts.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    cmd = [
        sys.executable,
        "-m",
        "rewardsmith",
        "score",
        str(rollouts),
        "--spec",
        str(spec_path),
        "-o",
        str(tmp_path / "o.jsonl"),
        "--summary-json",
        str(tmp_path / "s.json"),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in out] == [None] * 4 and [r["correct"] for r in out] == [None] * 4
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["judge_failed"] == 4 and summary["judge_requests"] == 4 and "judge_failed" in run.stdout
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # rerun: the cache answers
    assert json.loads((tmp_path / "s.json").read_text())["judge_requests"] == 0 and run.returncode == 0

    from rewardsmith.integrations.trl import reward_funcs

    (fn,) = reward_funcs(judge_spec(url, model), num_generations=2)
    values = fn(prompts=[r["prompt"] for r in RECORDS], completions=[r["completion"] for r in RECORDS])
    assert values == [None] * 4  # TRL drops None from its group statistics; never 0

    from fastapi.testclient import TestClient

    from rewardsmith.integrations.server import create_app

    with TestClient(create_app(judge_spec(url, model))) as client:
        r = client.post(
            "/get_reward",
            json={"query": [r["prompt"] + r["completion"] for r in RECORDS], "prompts": [r["prompt"] for r in RECORDS]},
        )
    assert r.status_code == 200, r.text
    assert r.json()["rewards"] == [None] * 4  # unknown, never a silent 0 (a rewardsmith RM client reads null)
    logs = r.json()["extra_logs"]
    assert logs["correct_known"] == [0.0] * 4 and logs["judge_failed"] == [1.0] * 4


def tool_judge_template(observation: str) -> str:
    """ChatML, except that after a user turn reading ``observation`` the assistant turn starts with a
    sentence (a prefill): the judge model "reads" the tool's result and continues from it."""
    return CHATML.replace(
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
        "{% if add_generation_prompt %}<|im_start|>assistant\n"
        f"{{% if messages[-1]['content'].strip() == {observation!r} %}}The tool result checks out.{{% endif %}}"
        "{% endif %}",
    )


@pytest.mark.parametrize(
    "tool_call", ['{"tool" :"calculator", "input":"2+3"}', '{"tool":"python", "input" :"print(2+3)"}']
)
def test_themis_tool_loop_end_to_end(server, tmp_path, tool_call):
    """Themis through the real server: the judge model's first greedy reply asks for a tool; rewardsmith
    runs it (the calculator in-process, python in the bubblewrap sandbox) and sends "Observation: 5";
    the model's chat template reads that observation and prefills the next assistant turn, from which
    the model replies "SCORE: 9". The same model told to expect another result keeps asking for the
    tool until ``max_tool_calls`` runs out; with no tool calls allowed a tool request is unknown."""
    url, _ = server
    if "python" in tool_call:
        from rewardsmith.verifiers.sandbox import probe_bwrap

        if probe_bwrap()[0] is None:
            pytest.skip("no bubblewrap sandbox for the python tool")

    def judge(name: str, expects: str, **extra):
        model = build_scripted_chat_model(
            tmp_path / name,
            tool_call,
            merges_spelling(tool_call),
            branches={".": "SCORE: 9"},
            chat_template=tool_judge_template(expects),
        )
        spec = judge_spec(url, str(model), template="themis", max_tokens=32, **extra)
        with load_spec(spec) as pipe:
            scores = pipe.score(RECORDS[:1])
            return scores, pipe.verifiers["default"].usage()

    scores, usage = judge("reads-5", "Observation: 5", max_tool_calls=2)
    assert scores.status == ["ok"] and scores.details == ["score 9/10"], scores.details
    assert scores.total.tolist() == pytest.approx([8 / 9])
    assert usage["requests"] == 2  # the tool request, then the judgement

    scores, usage = judge("expects-6", "Observation: 6", max_tool_calls=2)  # 5 never satisfies it
    assert scores.status == [JUDGE_FAILED] and scores.details == ["no judgement after 2 tool calls"]
    assert usage["requests"] == 3

    scores, usage = judge("no-tools", "Observation: 5", max_tool_calls=0)
    assert scores.status == [JUDGE_FAILED] and usage["requests"] == 1


def test_pairwise_and_autorule_commands_against_the_server(server, tmp_path):
    url, model = server
    spec = tmp_path / "judge.json"
    spec.write_text(json.dumps(judge_spec(url, model, template="pairwise", cache_dir=str(tmp_path / "cache"))))
    (tmp_path / "m.jsonl").write_text(
        "".join(json.dumps({"prompt_id": f"q{i}", "prompt": "Hi", "completion": "Hello"}) + "\n" for i in range(3))
    )
    (tmp_path / "b.jsonl").write_text(
        "".join(json.dumps({"prompt_id": f"q{i}", "prompt": "Hi", "output": "Hey"}) + "\n" for i in range(2))
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardsmith",
            "judge",
            "pairwise",
            str(tmp_path / "m.jsonl"),
            str(tmp_path / "b.jsonl"),
            "--spec",
            str(spec),
            "-o",
            str(tmp_path / "j.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    # random replies: both pairs unknown, left out of the file, counted; nothing judged is a failure exit
    assert (
        run.returncode == 1
        and "0 judged, 2 unknown (left out) of 2 pairs; 1 model rows without a base row" in run.stdout
    )
    assert "requests 2" in run.stdout and (tmp_path / "j.jsonl").read_text() == ""
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text(
        json.dumps({"prompt": "2+2?", "chosen": "4", "rejected": "5", "rationale": "A is right."})
        + "\n"
        + json.dumps({"prompt": "Hi", "chosen": "Hello!", "rejected": "..."})
        + "\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardsmith",
            "autorule",
            "extract",
            str(prefs),
            "--spec",
            str(spec),
            "-o",
            str(tmp_path / "rules.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        run.returncode == 1
        and "0 rules from 0 candidates" in run.stdout
        and "2 of 2 preferences gave no rules" in run.stdout
    )


def test_pairwise_file_from_the_real_server_feeds_lcwr_and_wildbench(server, tmp_path):
    """A judge scripted to reply "[[A+]]" ("[[" and "+]]" are single tokens of its tokenizer)."""
    url, _ = server
    judge_dir = build_scripted_chat_model(tmp_path / "pairwise-judge", "[[A+]]", merges_spelling("[[A+]]"))
    spec = tmp_path / "judge.json"
    spec.write_text(json.dumps(judge_spec(url, str(judge_dir), template="pairwise", max_tokens=16)))
    for name, text in (("m", "A fairly long answer."), ("b", "Short.")):
        rows = [{"prompt_id": f"q{i}", "prompt": f"Question {i}?", "completion": f"{text} {i}"} for i in range(6)]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    judgements = tmp_path / "j.jsonl"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardsmith",
            "judge",
            "pairwise",
            str(tmp_path / "m.jsonl"),
            str(tmp_path / "b.jsonl"),
            "--spec",
            str(spec),
            "-o",
            str(judgements),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "6 judged, 0 unknown" in run.stdout, run.stdout + run.stderr
    rows = [json.loads(line) for line in judgements.read_text().splitlines()]
    assert [(r["preference"], r["outcome"]) for r in rows] == [(0.75, "A+")] * 6
    for args in (["lcwr", str(judgements)], ["wildbench", str(judgements)]):
        run = subprocess.run(
            [sys.executable, "-m", "rewardsmith", "eval", *args, "--out", str(tmp_path / args[0])],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    lc = json.loads((tmp_path / "lcwr" / "lcwr.json").read_text())["models"]["model"]
    assert lc["n"] == 6 and lc["win_rate"] == 75.0  # six A+ judgements at P(model preferred) = 0.75
    wb = json.loads((tmp_path / "wildbench" / "wildbench.json").read_text())["wb_reward"]["model"]["baselines"]["base"]
    assert wb["better"] == 6 and wb["reward"] == 50.0  # WB-Reward: "slightly better" = +0.5 each, ×100


def test_autorule_extract_then_verify_through_the_real_server(server, tmp_path):
    """Rules extracted by a judge scripted to answer {"rules": ["Be concise."]}, then verified per
    response by one scripted to answer {"verdicts": ["yes"]}."""
    url, _ = server
    say_rules, say_yes = '{"rules": ["Be concise."]}', '{"verdicts": ["yes"]}'
    extractor = build_scripted_chat_model(tmp_path / "extractor", say_rules, merges_spelling(say_rules))
    verifier = build_scripted_chat_model(tmp_path / "verifier", say_yes, merges_spelling(say_yes))
    spec = tmp_path / "extract.json"
    spec.write_text(json.dumps(judge_spec(url, str(extractor), max_tokens=32)))
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text(
        json.dumps(
            {"prompt": "2+2?", "chosen": "4", "rejected": "Let me think at length... 4", "rationale": "A is short."}
        )
        + "\n"
        + json.dumps({"prompt": "Hi", "chosen": "Hello!", "rejected": "Greetings, dear user, ..."})
        + "\n"
    )
    rules = tmp_path / "rules.yaml"
    run = subprocess.run(
        [sys.executable, "-m", "rewardsmith", "autorule", "extract", str(prefs), "--spec", str(spec), "-o", str(rules)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # 1 explanation asked (the other row has a rationale) + 2 extractions; 2 candidates -> 1 exactly -> no merge call
    assert "1 rules from 2 candidates (1 after exact dedupe" in run.stdout and "0 of 2 preferences" in run.stdout
    import yaml

    assert yaml.safe_load(rules.read_text())["rules"] == ["Be concise."]
    check = judge_spec(url, str(verifier), template="autorule", rules_file=str(rules), max_tokens=32)
    with load_spec(check) as pipe:
        scores = pipe.score(RECORDS)
    assert (
        scores.status == ["ok"] * 4
        and scores.details == ["rules satisfied 1/1"] * 4
        and scores.total.tolist() == [1.0] * 4
    )


def test_killing_the_server_mid_batch_finishes_with_unknown_rewards(model_dir, tmp_path):
    port = free_port()
    proc = start_server(model_dir, port)
    cache = tmp_path / "cache"
    records = [{"prompt_id": f"q{i}", "prompt": "Say something.", "completion": f"answer {i}"} for i in range(8)]
    spec = judge_spec(
        f"http://127.0.0.1:{port}/v1",
        str(model_dir),
        cache_dir=str(cache),
        concurrency=1,
        max_tokens=48,
        max_retries=2,
        backoff_s=0.05,
    )

    def kill_after_first_reply():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(cache.rglob("*.json")):
            time.sleep(0.02)
        stop_server(proc)

    killer = threading.Thread(target=kill_after_first_reply)
    killer.start()
    try:
        with load_spec(spec) as pipe:
            scores = pipe.score(records)
            usage = pipe.verifiers["default"].usage()
    finally:
        killer.join(timeout=130)
        stop_server(proc)
    assert len(scores) == 8 and scores.status == [JUDGE_FAILED] * 8
    failed = [d for d in scores.details if d.startswith("judge request failed")]
    assert 1 <= len(failed) <= 7 and usage["failed_requests"] == len(failed) and usage["retries"] >= 2 * len(failed)
    assert sum(d.startswith("unparseable") for d in scores.details) == 8 - len(failed)
    assert [r["reward"] for r in scores.to_records(records)] == [None] * 8
