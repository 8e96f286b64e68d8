"""``POST /verify`` spoken by NeMo Gym's own request/response models over real HTTP."""

import httpx
import pytest

pytest.importorskip("uvicorn")
base = pytest.importorskip("nemo_gym.base_resources_server")
oa = pytest.importorskip("nemo_gym.openai_utils")
math_server = pytest.importorskip("resources_servers.math_with_judge.app")
agent = pytest.importorskip("responses_api_agents.simple_agent.app")

from rewardsmith.batch import Batch  # noqa: E402
from rewardsmith.integrations import nemo_gym  # noqa: E402
from rewardsmith.integrations.server import create_app  # noqa: E402
from rewardsmith.records import validate_record  # noqa: E402
from test_server import running  # noqa: E402

SPEC = {"verifier": {"name": "math", "extract": ["boxed"]}, "timeout_s": 2, "workers": 1, "length_unit": "words"}
TOWER = "\\boxed{\\sqrt[\\sqrt[\\sqrt[9]{9}]{9}]{9}^{9^{9^{9}}}}"  # sympy works on this far beyond 2 s


def response(*output, status="completed", incomplete=None):
    return oa.NeMoGymResponse(
        id="resp_1",
        created_at=0.0,
        model="policy",
        object="response",
        output=list(output),
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        status=status,
        incomplete_details=incomplete,
    )


def say(text, cls=None, **extra):
    cls = cls or oa.NeMoGymResponseOutputMessage
    return cls(id="msg", content=[oa.NeMoGymResponseOutputText(annotations=[], text=text)], **extra)


def request(output, expected="8", question="What is 3+5?", **row):
    """The body NeMo Gym's simple agent posts to /verify: its run request (the dataset row) dumped, plus the
    response; it must parse as the math resources server's own verify request."""
    params = oa.NeMoGymResponseCreateParamsNonStreaming(
        input=[oa.NeMoGymEasyInputMessage(role="user", content=question)], instructions="Use the calculator."
    )
    run = agent.SimpleAgentRunRequest(
        responses_create_params=params, question=question, expected_answer=expected, **row
    )
    body = run.model_dump(mode="json") | {"response": output.model_dump(mode="json")}
    math_server.LibraryJudgeMathVerifyRequest.model_validate(body)
    return body


TOOL_TRAJECTORY = response(
    oa.NeMoGymResponseFunctionToolCall(call_id="c1", name="calc", arguments='{"expr": "3+5"}'),
    oa.NeMoGymFunctionCallOutput(call_id="c1", output="8"),
    say("The calculator says \\boxed{8}"),
)


@pytest.fixture(scope="module")
def url():
    with running(create_app(SPEC)) as u:
        yield u


def post(url, req):
    """POST a verify body and parse the answer with NeMo Gym's response model."""
    r = httpx.post(f"{url}/verify", json=req, timeout=60)
    assert r.status_code == 200, r.text
    return base.BaseVerifyResponse.model_validate(r.json()), r.json()


def test_verify_scores_a_tool_trajectory_and_echoes_the_request(url):
    req = request(TOOL_TRAJECTORY)
    parsed, raw = post(url, req)
    assert parsed.reward == 1.0 and parsed.mask_sample is False and parsed.failure_kind is None
    assert parsed.response.output[0].name == "calc"  # the request comes back inside the response model
    echoed = math_server.LibraryJudgeMathVerifyRequest.model_validate(raw)
    assert echoed.expected_answer == "8" and echoed.question == "What is 3+5?"
    assert raw["expected_answer"] == "8" and raw["correct"] is True and raw["components"]["correctness"] == 1.0


def test_verify_wrong_and_missing_answers_score_zero(url):
    wrong, _ = post(url, request(response(say("\\boxed{9}"))))
    assert wrong.reward == 0.0 and wrong.mask_sample is False
    # the calculator's output is a tool turn, not the policy's answer: a trajectory that ends on a call scores 0
    only_tool = response(
        oa.NeMoGymResponseFunctionToolCall(call_id="c1", name="calc", arguments="{}"),
        oa.NeMoGymFunctionCallOutput(call_id="c1", output="\\boxed{8}"),
    )
    parsed, raw = post(url, request(only_tool))
    assert parsed.reward == 0.0 and raw["correct"] is False


def test_verify_masks_a_verifier_timeout(url):
    parsed, raw = post(url, request(response(say(TOWER))))
    assert parsed.mask_sample is True and parsed.failure_kind == "verifier_error" and parsed.reward == 0.0
    assert raw["correct"] is None and "timeout" in parsed.failure_reason


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"responses_create_params": {"input": "hi"}}, "response"),
        ({"responses_create_params": {"input": "hi"}, "response": {"output": []}}, "no assistant turn"),
        (
            {"responses_create_params": {"input": "hi"}, "response": {"output": [{"type": "web_search_call"}]}},
            "not supported",
        ),
        ({"responses_create_params": {"input": [{"role": "robot", "content": "x"}]}, "response": {}}, "role"),
    ],
)
def test_verify_refuses_malformed_requests_with_422(url, body, reason):
    r = httpx.post(f"{url}/verify", json=body, timeout=30)
    assert r.status_code == 422 and reason in r.text


def test_record_from_a_request_keeps_turns_calls_and_training_tokens():
    trained = say("\\boxed{8}", oa.NeMoGymResponseOutputMessageForTraining, **{
        "prompt_token_ids": [1, 2], "generation_token_ids": [5, 6, 7], "generation_log_probs": [-0.1, -0.2, -0.3]
    })  # fmt: skip
    call = oa.NeMoGymResponseFunctionToolCallForTraining(
        call_id="c1",
        name="calc",
        arguments="3+5",
        prompt_token_ids=[1],
        generation_token_ids=[4],
        generation_log_probs=[-1.0],
    )
    out = response(call, oa.NeMoGymFunctionCallOutput(call_id="c1", output="8"), trained, status="incomplete",
                   incomplete={"reason": "max_output_tokens"})  # fmt: skip
    rec = nemo_gym.to_record(request(out, _ng_task_index=3))
    assert rec["messages"] == [
        {"role": "system", "content": "Use the calculator."},
        {"role": "user", "content": "What is 3+5?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "calc", "arguments": "3+5"}}],
            "num_tokens": 1,
            "logprobs": [-1.0],
        },
        {"role": "tool", "content": "8", "tool_call_id": "c1"},
        {"role": "assistant", "content": "\\boxed{8}", "num_tokens": 3, "logprobs": [-0.1, -0.2, -0.3]},
    ]
    assert rec["prompt_id"] == "3" and rec["answer"] == "8" and rec["truncated"] is True
    batch = Batch.from_records([validate_record(rec)])  # the completion and prompt are derived from the turns
    assert batch.completions == ["\\boxed{8}"] and batch.prompts == ["What is 3+5?"]
    assert rec["meta"] == {"question": "What is 3+5?"}  # the reference is never in meta


def test_rollouts_of_one_task_share_a_group_without_a_task_index():
    a = nemo_gym.to_record(request(TOOL_TRAJECTORY))
    b = nemo_gym.to_record(request(response(say("\\boxed{9}"))))
    c = nemo_gym.to_record(request(response(say("x")), question="What is 2+2?"))
    assert a["prompt_id"] == b["prompt_id"] != c["prompt_id"]


def test_verify_refuses_a_step_scheduled_spec_without_a_group_size():
    """One rollout per call and no --num-generations: nothing could tell the steps apart, so the spec is refused."""
    spec = {**SPEC, "shaping": [{"name": "budget_curriculum", "start": 30, "end": 10, "every": 2}]}
    with running(create_app(spec)) as u:
        r = httpx.post(f"{u}/verify", json=request(TOOL_TRAJECTORY), timeout=30)
    assert r.status_code == 422 and "one rollout at a time" in r.text and "--num-generations" in r.text


def test_verify_waits_for_whole_groups_and_scores_them_like_score():
    """kimi over one task's 4 rollouts, each posted alone and concurrently, in shuffled order: every answer equals
    scoring the whole group at once (a group of one would give every correct rollout the same reward)."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    from rewardsmith import load_spec

    spec = {**SPEC, "shaping": [{"name": "kimi"}]}
    texts = ["\\boxed{8}", "so the sum is \\boxed{8}", "adding three and five gives eight, \\boxed{8}", "\\boxed{9}"]
    bodies = [request(response(say(t)), _ng_task_index=7, _ng_rollout_index=i) for i, t in enumerate(texts)]
    order = list(range(4))
    random.Random(3).shuffle(order)
    with running(create_app(spec, group_size=4, group_timeout_s=30)) as u:
        with ThreadPoolExecutor(4) as pool:
            answers = dict(zip(order, pool.map(lambda i: post(u, bodies[i])[1], order)))
        health = httpx.get(f"{u}/healthz", timeout=10).json()
    expected = load_spec(spec).score([nemo_gym.to_record(b) for b in bodies]).total.tolist()
    assert [answers[i]["reward"] for i in range(4)] == pytest.approx(expected)
    assert len({round(r, 6) for r in expected[:3]}) == 3 and expected[3] < min(expected[:3])  # lengths count
    assert all(not a["mask_sample"] for a in answers.values())
    assert health["group_barrier"]["partial_groups"] == 0
