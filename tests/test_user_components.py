"""User components — by import path, from entry points, as Python objects, and TRL-style reward
functions — in every place a spec runs: the library, ``score``, ``serve`` over HTTP, the TRL and
verl adapters, ``--engine ray`` and ``lab --spec``; and broken ones named in the error.

The user's package is ``tests/userpkg``; subprocesses get ``tests/`` on PYTHONPATH, as a user's
package would be installed or on their path.
"""

import ast
import importlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from rewardsmith import load_spec
from rewardsmith.cli import main
from rewardsmith.engine import VerificationEngine
from rewardsmith.registry import SpecError
from rewardsmith.verifiers.base import BAD_REFERENCE, ERROR, OK, TIMEOUT, Job
from userpkg import components as user

ROOT = Path(__file__).resolve().parents[1]
PYTHONPATH = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
HASH_SPEC = {
    "verifier": {"name": "userpkg.components:hash_answer"},
    "shaping": [{"name": "userpkg.components:OverLimit", "limit": 3}],
    "length_unit": "words",
    "workers": 2,
}
HASH_RECORDS = [
    {"prompt_id": "a", "completion": "so #### 4", "answer": "4"},
    {"prompt_id": "a", "completion": "it is long so #### 4", "answer": "4"},
    {"prompt_id": "a", "completion": "#### 5", "answer": "4"},
    {"prompt_id": "b", "completion": "#### 7"},
]
HASH_REWARDS = [1.0, 0.5, 0.0, 0.0]  # correct; correct but 6 words > 3 (−0.5); wrong; no answer column: unknown


def run_cli(*args: str, extra_path: str = "", timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH + (os.pathsep + extra_path if extra_path else "")}
    return subprocess.run(
        [sys.executable, "-m", "rewardsmith", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def scored(spec, records, **overrides):
    pipe = load_spec(spec, **overrides)
    try:
        return pipe.score(records)
    finally:
        pipe.close()


# ----------------------------------------------------------------------------- every kind, every spelling
def test_every_kind_by_import_path():
    spec = {
        "verifier": "userpkg.components:LastInteger",
        "format": {"name": "userpkg.components:AnswerLine", "mode": "add", "weight": 0.5},
        "shaping": [{"name": "userpkg.components:OverLimit", "limit": 3}],
        "advantage": "userpkg.components:MinusGroupMean",
        "length_unit": "words",
        "workers": 2,
    }
    records = [
        {"prompt_id": "a", "completion": "Answer: 4", "answer": "4"},
        {"prompt_id": "a", "completion": "I think it is 5 ok", "answer": "4"},
        {"prompt_id": "b", "completion": "no number in here at all", "answer": "4"},
    ]
    pipe = load_spec(spec)
    try:
        out = pipe.score_records(records)
    finally:
        pipe.close()
    # 1 + 0.5·format; 0 + 0 − 0.5 (6 words > 3); no answer: 0, over the limit −0.5
    assert [r["reward"] for r in out] == [1.5, -0.5, -0.5]
    assert [r["correct"] for r in out] == [True, False, False]
    # components are contributions: the format adds 0.5·1
    assert out[0]["components"] == {"correctness": 1.0, "format": 0.5, "userpkg.components:OverLimit": 0.0}
    assert [r["advantage"] for r in out] == [1.0, -1.0, 0.0]  # reward minus its group's mean


def test_python_objects_and_options_in_a_dict_spec():
    s = scored(
        {"verifier": {"name": user.LastInteger, "offset": 1}, "length_unit": "words", "workers": 1},
        [{"prompt_id": "a", "completion": "5", "answer": "4"}, {"prompt_id": "a", "completion": "4", "answer": "4"}],
    )
    assert s.correct.tolist() == [1.0, 0.0]
    s = scored({"verifier": {"name": user.hash_answer}, "length_unit": "words", "workers": 1}, HASH_RECORDS)
    assert s.total.tolist() == [1.0, 1.0, 0.0, 0.0]
    with pytest.raises(SpecError, match=r"verifier\(userpkg.components:LastInteger\).offset"):
        load_spec({"verifier": {"name": "userpkg.components:LastInteger", "offset": "many"}})


def test_a_subclass_of_a_built_in_never_shares_its_cached_verdicts():
    """exact and a subclass inheriting its name verify identical jobs in one engine: each keeps its own verdict."""
    spec = {"verifier": {"plain": "exact", "reversed": "userpkg.components:ReversedExact"}, "length_unit": "words"}
    records = [
        {"prompt_id": "a", "completion": "Answer: 12", "answer": "12", "data_source": "plain"},
        {"prompt_id": "b", "completion": "Answer: 12", "answer": "12", "data_source": "reversed"},
        {"prompt_id": "c", "completion": "Answer: 12", "answer": "21", "data_source": "reversed"},
    ]
    assert scored(spec, records).correct.tolist() == [1.0, 0.0, 1.0]


# ----------------------------------------------------------------------------- TRL-style reward functions
def test_trl_accuracy_reward_gives_the_same_rewards_as_called_directly():
    pytest.importorskip("math_verify")
    from trl.rewards import accuracy_reward

    from rewardsmith.integrations.trl import reward_funcs

    solutions = [r"\frac{1}{3}", r"\frac{1}{3}", "42", "42", "hello there", "", r"\sqrt{2}", r"$\sqrt{2}$"]
    texts = [
        r"so \boxed{\frac{1}{3}}",
        r"so \boxed{\frac{1}{2}}",
        "The answer is $42$",
        "no idea",
        r"\boxed{1}",
        r"\boxed{1}",
        r"\boxed{\sqrt 2}",
        r"\boxed{\sqrt{2}}",
    ]
    direct = accuracy_reward([[{"role": "assistant", "content": t}] for t in texts], solutions)
    assert None in direct and 0.0 in direct and 1.0 in direct  # the cases this test is about

    spec = {
        "verifier": {"name": "trl.rewards:accuracy_reward", "completion_format": "conversational"},
        "length_unit": "words",
        "workers": 2,
    }
    (fn,) = reward_funcs(spec)
    try:
        via_trl = fn(
            prompts=["q"] * len(texts),
            completions=[[{"role": "assistant", "content": t}] for t in texts],
            completion_ids=[[1]] * len(texts),
            solution=solutions,
        )
    finally:
        fn.scorer.pipeline.close()
    assert via_trl == direct

    records = [{"prompt_id": f"q{i}", "completion": t, "answer": s} for i, (t, s) in enumerate(zip(texts, solutions))]
    pipe = load_spec(spec)
    try:
        scores = pipe.score(records)
        out = scores.to_records(records)
    finally:
        pipe.close()
    assert [r["correct"] for r in out] == [None if d is None else d == 1.0 for d in direct]
    assert [r["reward"] for r in out] == [0.0 if d is None else d for d in direct]  # unknown scores as base.wrong
    assert [st for st, d in zip(scores.status, direct) if d is None] == [BAD_REFERENCE] * direct.count(None)


def test_the_function_gets_completions_in_its_format_and_every_column(tmp_path):
    log = tmp_path / "calls.txt"
    records = [
        {
            "prompt_id": "p1",
            "prompt": [{"role": "user", "content": "2+2?"}],
            "completion": "four",
            "answer": "4",
            "num_tokens": 3,
            "truncated": True,
            "data_source": "arith",
            "step": 7,
            "meta": {"log": str(log), "difficulty": 2, "token_ids": [5, 6, 7]},
        },
        {
            "prompt_id": "p2",
            "prompt": "3+3?",
            "completion": "six",
            "answer": "6",
            "num_tokens": 1,
            "meta": {"log": str(log), "solution": "3+3 = 6", "completions": "never passed"},
        },
    ]
    spec = {
        "verifier": {"name": "userpkg.components:echo_columns", "completion_format": "conversational"},
        "workers": 1,
    }
    assert scored(spec, records).total.tolist() == [1.0, 1.0]
    (call,) = [ast.literal_eval(line) for line in log.read_text().splitlines()]  # one call for the whole batch
    assert call == {
        "completions": [[{"role": "assistant", "content": "four"}], [{"role": "assistant", "content": "six"}]],
        "prompts": [[{"role": "user", "content": "2+2?"}], [{"role": "user", "content": "3+3?"}]],
        "answer": ["4", "6"],
        "solution": ["4", "3+3 = 6"],  # meta's own solution column wins over the alias
        "prompt_id": ["p1", "p2"],
        "data_source": ["arith", None],
        "num_tokens": [3, 1],
        "truncated": [True, False],
        "step": [7, None],
        "log": [str(log)] * 2,
        "difficulty": [2, None],
        "token_ids": [[5, 6, 7], None],
        "completion_ids": [[5, 6, 7], None],
    }
    log.unlink()
    scored({**spec, "verifier": {"name": "userpkg.components:echo_columns"}}, records[1:])
    (call,) = [ast.literal_eval(line) for line in log.read_text().splitlines()]
    assert call["completions"] == ["six"] and call["prompts"] == ["3+3?"]  # standard format: plain text

    # a multi-turn conversational record: its assistant messages (a tool's left out); the text joins them
    turns = [
        {"role": "assistant", "content": "call"},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": "so 42"},
    ]
    multi = [{"prompt_id": "p3", "completion": turns, "meta": {"log": str(log)}}]
    for fmt, expected in (("conversational", [[turns[0], turns[2]]]), ("standard", ["callso 42"])):
        log.unlink()
        scored({**spec, "verifier": {"name": "userpkg.components:echo_columns", "completion_format": fmt}}, multi)
        (call,) = [ast.literal_eval(line) for line in log.read_text().splitlines()]
        assert call["completions"] == expected and "completions" not in {k for k in call if k != "completions"}


def test_called_once_per_chunk_never_per_rollout_with_dedupe_and_cache(tmp_path):
    log = tmp_path / "calls.txt"
    texts = ["x" * n for n in range(1, 21)]
    records = [
        {"prompt_id": f"q{i % 5}", "completion": t, "meta": {"log": str(log)}} for i, t in enumerate(texts + texts[:10])
    ]
    pipe = load_spec({"verifier": "userpkg.components:logged_length", "workers": 2, "length_unit": "chars"})
    try:
        first = pipe.score(records)
        calls = [int(n) for n in log.read_text().split()]
        assert (
            sum(calls) == 20 and 1 < max(calls) <= 8 and len(calls) < 20
        )  # 20 unique rollouts in chunks, duplicates verified once
        assert first.total.tolist() == [1.0 if len(r["completion"]) % 2 == 0 else 0.25 for r in records]
        assert pipe.score(records).total.tolist() == first.total.tolist()
        assert [int(n) for n in log.read_text().split()] == calls  # the second batch came from the cache
    finally:
        pipe.close()


def test_a_hanging_rollout_times_out_alone_and_the_others_score():
    records = [{"prompt_id": "q", "completion": f"fine {i}"} for i in range(5)] + [
        {"prompt_id": "q", "completion": "SLEEP"}
    ]
    s = scored({"verifier": "userpkg.components:sleep_on_request", "workers": 1, "timeout_s": 1}, records)
    assert s.status == [OK] * 5 + [TIMEOUT]
    assert s.total.tolist() == [1.0] * 5 + [0.0]


def test_a_rollout_that_kills_its_worker_scores_error_alone():
    """The chunk's call dies with its worker; retried one per call, only the culprit (not the chunk's head) is lost."""
    records = [{"prompt_id": "q", "completion": f"fine {i}"} for i in range(5)]
    records.insert(3, {"prompt_id": "q", "completion": "EXIT"})
    s = scored({"verifier": "userpkg.components:exit_on_request", "workers": 1}, records)
    assert s.status == [OK] * 3 + [ERROR] + [OK] * 2 and s.details[3] == "worker process died"
    assert s.total.tolist() == [1.0] * 3 + [0.0] + [1.0] * 2


def test_bad_return_values_score_error_with_the_reason():
    records = [{"prompt_id": "q", "completion": c} for c in ("a", "bb", "ccc", "dddd")]
    s = scored({"verifier": "userpkg.components:wrong_count", "workers": 1}, records)
    assert (
        s.status == [ERROR] * 4 and "userpkg.components:wrong_count returned 1 values for 4 completions" in s.details[0]
    )
    s = scored({"verifier": "userpkg.components:not_numbers", "workers": 1}, records)
    assert s.status == [ERROR, ERROR, OK, BAD_REFERENCE] and s.correct[2] == 1.0
    assert "'yes'" in s.details[0] and "inf" in s.details[1]


# ----------------------------------------------------------------------------- broken components
@pytest.mark.parametrize(
    "kind_field, name, message",
    [
        (
            "verifier",
            "userpkg.broken:Thing",
            r"verifier: verifier 'userpkg.broken:Thing': cannot import module 'userpkg.broken': "
            r"ImportError: userpkg.broken needs",
        ),
        (
            "verifier",
            "userpkg.missing:Thing",
            r"verifier 'userpkg.missing:Thing': cannot import module 'userpkg.missing': ModuleNotFoundError",
        ),
        (
            "verifier",
            "userpkg.components:Missing",
            r"verifier 'userpkg.components:Missing': 'userpkg.components' has no attribute 'Missing'",
        ),
        ("verifier", "userpkg.components:", r"'userpkg.components:': not an import path"),
        (
            "verifier",
            "userpkg.components:NotAComponent",
            r"'userpkg.components:NotAComponent' is a class that is not a rewardsmith component, not a verifier",
        ),
        (
            "verifier",
            "userpkg.components:OverLimit",
            r"'userpkg.components:OverLimit' is a shaper, not a verifier; a verifier subclasses Verifier",
        ),
        (
            "shaping",
            "userpkg.components:hash_answer",
            r"shaping\[0\]: shaper 'userpkg.components:hash_answer' is a function \(only a verifier can be one\)",
        ),
        (
            "advantage",
            "userpkg.components:AnswerLine",
            r"advantage 'userpkg.components:AnswerLine' is a format, not an advantage",
        ),
        (
            "verifier",
            "userpkg.components:NOT_CALLABLE",
            r"'userpkg.components:NOT_CALLABLE' is an int, not a class or a function",
        ),
        (
            "verifier",
            "userpkg.components:locked_reward",
            r"'userpkg.components:locked_reward' cannot be sent to verification workers .*does not pickle",
        ),
        (
            "verifier",
            "no_such_verifier",
            r"verifier: unknown verifier 'no_such_verifier'; allowed: .*exact.*or an import path",
        ),
    ],
)
def test_a_broken_component_is_an_error_naming_it(kind_field, name, message):
    value = [{"name": name}] if kind_field == "shaping" else {"name": name}
    with pytest.raises(SpecError, match=message):
        load_spec({kind_field: value})


def test_components_defined_in_main_are_named_at_load_not_worker_process_died(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent("""
        from rewardsmith import load_spec
        from rewardsmith.registry import SpecError, register
        from rewardsmith.verifiers.base import Verdict, Verifier

        def my_reward(completions, **columns):
            return [1.0] * len(completions)

        @register("verifier", "mine_in_main", "a verifier defined in the script")
        class MineInMain(Verifier):
            def extract(self, completion):
                return completion

            def check(self, job):
                return Verdict(1.0)

        for spec in ({"verifier": {"name": my_reward}}, {"verifier": "mine_in_main"}):
            try:
                load_spec({**spec, "workers": 1}).score([{"prompt_id": "q", "completion": "x", "answer": "x"}])
            except SpecError as exc:
                print("SpecError:", exc)
    """)
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": PYTHONPATH},
    )
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == 2, out.stderr[-2000:]
    assert (
        "verifier __main__:my_reward cannot be sent to verification workers" in lines[0]
        and "my_reward is defined in __main__" in lines[0]
    )
    assert (
        "verifier 'mine_in_main' (__main__.MineInMain) cannot be sent" in lines[1] and "module:MineInMain" in lines[1]
    )
    assert "worker process died" not in out.stdout + out.stderr


def test_a_verifier_the_workers_cannot_import_is_named_and_the_engine_recovers(tmp_path, monkeypatch):
    """A module the parent loaded from a file (not importable by name) pickles here and fails in the worker."""
    (tmp_path / "ghost_module.py").write_text(
        textwrap.dedent("""
        from rewardsmith.verifiers.base import Verdict, Verifier

        class Ghost(Verifier):
            name = "ghost"

            def check(self, job):
                return Verdict(1.0)
    """)
    )
    loader = importlib.util.spec_from_file_location("ghost_module", tmp_path / "ghost_module.py")
    module = importlib.util.module_from_spec(loader)
    monkeypatch.setitem(sys.modules, "ghost_module", module)
    loader.loader.exec_module(module)
    engine = VerificationEngine(workers=2, timeout_s=5)
    try:
        with pytest.raises(
            SpecError,
            match=r"verifier 'ghost' \(ghost_module.Ghost\) cannot be loaded in a verification worker .*"
            r"ModuleNotFoundError: No module named 'ghost_module'",
        ):
            engine.run(module.Ghost(), [Job(str(i), "1") for i in range(20)])
        verifier = load_spec({"verifier": "userpkg.components:LastInteger"}).verifiers["default"]
        assert [v.score for v in engine.run(verifier, [Job("1", "1"), Job("2", "1")])] == [1.0, 0.0]
    finally:
        engine.close()


# ----------------------------------------------------------------------------- installed packages (entry points)
@pytest.fixture
def site(tmp_path, monkeypatch):
    """An installed distribution declaring components: a dist-info directory on sys.path."""
    dist = tmp_path / "site" / "userpkg_plugins-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: userpkg-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""
        [rewardsmith.components]
        last_integer = userpkg.components:LastInteger
        hash_answer = userpkg.components:hash_answer
        over_limit = userpkg.components:OverLimit
        exact = userpkg.components:LastInteger
        broken_thing = userpkg.broken:Thing
        not_a_component = userpkg.components:NotAComponent
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()
    return tmp_path / "site"


def test_rewardsmith_list_shows_installed_components(site):
    out = run_cli("list", extra_path=str(site))
    assert out.returncode == 0, out.stderr
    sections = {title: body for title, body in (s.split(":\n", 1) for s in out.stdout.strip().split("\n\n"))}
    assert (
        "  last_integer " in sections["verifiers"]
        and "The last integer in the completion equals the reference." in sections["verifiers"]
    )
    assert (
        "  hash_answer " in sections["verifiers"]
        and "  over_limit " in sections["shapers"]
        and "  over_limit " not in sections["verifiers"]
    )
    assert (
        "'broken_thing' (userpkg.broken:Thing, package userpkg-plugins) is not listed" in out.stderr
        and "ImportError" in out.stderr
    )
    assert (
        "'exact' (userpkg.components:LastInteger, package userpkg-plugins) is not listed: "
        "shadowed by the built-in verifier 'exact'" in out.stderr
    )
    assert "'not_a_component'" in out.stderr and "neither a component class" in out.stderr
    shapers = run_cli("list", "--kind", "shaper", extra_path=str(site))
    assert "over_limit" in shapers.stdout and "last_integer" not in shapers.stdout


def test_a_spec_uses_installed_components_by_name(site, tmp_path):
    records = tmp_path / "rollouts.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in HASH_RECORDS))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {"verifier": "hash_answer", "shaping": [{"name": "over_limit", "limit": 3}], "length_unit": "words"}
        )
    )
    out = run_cli(
        "score",
        str(records),
        "--spec",
        str(spec),
        "-o",
        str(tmp_path / "out.jsonl"),
        "--workers",
        "2",
        extra_path=str(site),
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == HASH_REWARDS and rows[1]["components"]["over_limit"] == -0.5

    assert scored(
        {"verifier": "last_integer", "workers": 1}, [{"prompt_id": "q", "completion": "4", "answer": "4"}]
    ).total.tolist() == [1.0]
    with pytest.raises(
        SpecError,
        match=r"verifier 'broken_thing' \(entry point 'userpkg.broken:Thing' of package userpkg-plugins\) "
        r"cannot be loaded: ImportError",
    ):
        load_spec({"verifier": "broken_thing"})
    with pytest.raises(
        SpecError, match=r"unknown shaper 'nope'; allowed: .*; installed: broken_thing, exact, hash_answer"
    ):
        load_spec({"shaping": ["nope"]})
    with pytest.raises(SpecError, match=r"advantage 'over_limit' \(entry point .*\) is a shaper, not an advantage"):
        load_spec({"advantage": "over_limit"})


# ----------------------------------------------------------------------------- score, serve, TRL, verl, Ray, lab
@pytest.fixture
def files(tmp_path):
    records = tmp_path / "rollouts.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in HASH_RECORDS))
    spec = tmp_path / "user.yaml"
    spec.write_text(yaml.safe_dump(HASH_SPEC))
    return records, spec


def test_score_command(files, tmp_path):
    records, spec = files
    assert main(["score", str(records), "--spec", str(spec), "-o", str(tmp_path / "out.jsonl")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == HASH_REWARDS and [r["correct"] for r in rows] == [True, True, False, None]


def test_serve_over_http(files):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    from test_server import start_serve

    _, spec = files
    proc, url = start_serve(str(spec), env={**os.environ, "PYTHONPATH": PYTHONPATH, "PYTHONUNBUFFERED": "1"})
    try:
        r = httpx.post(f"{url}/score", json={"records": HASH_RECORDS}, timeout=60)
        assert r.status_code == 200, r.text
        assert [row["reward"] for row in r.json()["records"]] == HASH_REWARDS
        r = httpx.post(
            f"{url}/get_reward",
            json={"query": ["Q #### 4", "Q #### 5"], "prompts": ["Q ", "Q "], "labels": ["4", "4"]},
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["rewards"] == [1.0, 0.0]
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output


def test_trl_adapter():
    from rewardsmith.integrations.trl import reward_funcs

    funcs = reward_funcs(HASH_SPEC, per_component=True)
    kwargs = {
        "prompts": ["Q"] * 3 + ["R"],
        "completions": [r["completion"] for r in HASH_RECORDS],
        "completion_ids": [[0] * len(r["completion"].split()) for r in HASH_RECORDS],
        "solution": [r.get("answer") for r in HASH_RECORDS],
    }
    try:
        base, over = (f(**kwargs) for f in funcs)
    finally:
        funcs[0].scorer.pipeline.close()
    assert [f.__name__ for f in funcs] == ["rewardsmith_correctness", "rewardsmith_userpkg.components:OverLimit"]
    assert base == [1.0, 1.0, 0.0, None] and over == [0.0, -0.5, 0.0, None]  # no reference: unknown, left out by TRL


def test_verl_adapter(files, monkeypatch):
    from rewardsmith.integrations import verl

    _, spec = files
    per_sample = spec.with_name("per_sample.yaml")
    per_sample.write_text(
        yaml.safe_dump({"verifier": "userpkg.components:hash_answer", "length_unit": "words", "workers": 1})
    )
    monkeypatch.setenv(verl.SPEC_ENV, str(per_sample))
    assert verl.compute_score("math", "so #### 4", "4", {"index": 0})["score"] == 1.0
    assert verl.compute_score("math", "so #### 3", "4", {"index": 0})["acc"] == 0.0
    monkeypatch.setenv(verl.SPEC_ENV, str(spec))
    rows = verl.compute_score_batch(
        ["math"] * 3, [r["completion"] for r in HASH_RECORDS[:3]], ["4"] * 3, [{"index": 0}] * 3
    )
    assert [r["score"] for r in rows] == HASH_REWARDS[:3] and rows[1]["userpkg.components:OverLimit"] == -0.5
    for path in (per_sample, spec):
        verl._pipeline_for(str(path)).close()
    with pytest.raises(ValueError, match=r"shapers \['userpkg.components:LongerThanGroup'\] need whole groups"):
        verl.make_compute_score({"verifier": "exact", "shaping": ["userpkg.components:LongerThanGroup"]})


@pytest.mark.slow
def test_ray_engine(files, tmp_path):
    pytest.importorskip("ray")
    records, spec = files
    out = run_cli(
        "score",
        str(records),
        "--spec",
        str(spec),
        "--engine",
        "ray",
        "--workers",
        "2",
        "-o",
        str(tmp_path / "ray.jsonl"),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "ray.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows] == HASH_REWARDS and [r["correct"] for r in rows] == [True, True, False, None]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_lab_with_a_user_spec(tmp_path, monkeypatch):
    """``lab --preset tiny --spec``, the preset cut further (a few SFT steps): the pipeline, not the effect."""
    pytest.importorskip("trl")
    from dataclasses import replace

    from rewardsmith.lab.presets import PRESETS

    tiny = PRESETS["tiny"]
    monkeypatch.setitem(
        PRESETS,
        "tiny",
        replace(
            tiny,
            sft=replace(tiny.sft, steps=4, n_train=200),
            n_test=12,
            max_new_tokens=24,
            sample_temperature=0.0,
            rl=replace(tiny.rl, max_completion_length=24),
        ),
    )
    monkeypatch.setenv("REWARDSMITH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("USERPKG_CALLS", str(tmp_path / "calls.txt"))  # the verification workers inherit it
    spec = tmp_path / "mine.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "verifier": "userpkg.components:hash_answer",
                "shaping": [{"name": "userpkg.components:OverLimit", "limit": 40}],
                "length_unit": "tokens",
            }
        )
    )
    out = tmp_path / "run"
    assert main(["lab", "--preset", "tiny", "--only", "correctness", "--spec", str(spec), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results["specs"]) == ["correctness", "mine"]
    mine = results["runs"][str(results["seed"])]["specs"]["mine"]  # one seed's run, curve included
    assert 0.0 <= mine["accuracy"] <= 1.0 and len(mine["curve"]) == 2
    assert all(math.isfinite(c["reward"]) for c in mine["curve"])
    calls = [int(n) for n in (tmp_path / "calls.txt").read_text().split()]
    rl = PRESETS["tiny"].rl
    assert (
        0 < sum(calls) <= rl.steps * rl.prompts_per_step * rl.num_generations and max(calls) <= 8
    )  # per chunk, deduped


def test_the_documented_example(tmp_path):
    """docs/components.md's command: its function's values are the correctness, its shaper caps length."""
    example = ROOT / "examples/user_components"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rewardsmith",
            "score",
            str(ROOT / "examples/math_rollouts.jsonl"),
            "--spec",
            str(example / "spec.yaml"),
            "-o",
            str(tmp_path / "scored.jsonl"),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(example)])},
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    sys.path.insert(0, str(example))
    try:
        from my_rewards import one_boxed_answer
    finally:
        sys.path.remove(str(example))
    expected = one_boxed_answer([r["completion"] for r in rows], [r["answer"] for r in rows])
    assert [r["components"]["correctness"] for r in rows] == expected and 0.0 < sum(expected) < len(rows)
    cap = [-0.2 if r["num_tokens"] > 200 else 0.0 for r in rows]
    assert [r["components"]["length_cap"] for r in rows] == pytest.approx(cap, abs=1e-12)
    assert [r["reward"] for r in rows] == pytest.approx([c + p for c, p in zip(expected, cap)], abs=1e-12)


def test_a_spec_with_python_objects_keeps_its_fingerprint_across_processes(tmp_path):
    """The fingerprint guards the state file: a function given from Python must hash the same in the next run."""
    code = (
        "from rewardsmith.spec import parse_spec; from userpkg.components import hash_answer, OverLimit; "
        "spec = {'verifier': {'name': hash_answer}, 'shaping': [{'name': OverLimit, 'limit': 3}]}; "
        "print(parse_spec(spec).fingerprint())"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": PYTHONPATH},
        )
        for _ in range(2)
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    from rewardsmith.spec import parse_spec

    by_path = parse_spec({"verifier": {"name": "userpkg.components:hash_answer"}}).fingerprint()
    assert parse_spec({"verifier": {"name": user.hash_answer}}).fingerprint() == by_path  # one component, two spellings
    assert parse_spec({"verifier": {"name": user.logged_length}}).fingerprint() != by_path
