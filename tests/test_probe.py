"""rewardsmith probe: every exploit class gets through a reader that reads answers the old way,
none gets through a careful reader; the wrong-beats-correct check by hand; the CLI contract."""

import json
import warnings

import numpy as np
import pytest

from probe_readers import readers_registered
from rewardsmith import load_spec
from rewardsmith.cli import main
from rewardsmith.pipeline import RewardWarning
from rewardsmith.probe import CLASSES, probe, wrong_beats_correct
from rewardsmith.probe.exploits import Reading, builtin_tasks, generate, meaning_deletions
from rewardsmith.shaping.base import BaseValues
from rewardsmith.shaping.length import Kimi
from rewardsmith.shaping.limits import DapoOverlong, Truncation


@pytest.fixture(scope="module", autouse=True)
def _test_readers():
    with readers_registered():
        yield


OLD_SPECS = {
    "math": {
        "verifier": "old_math",
        "format": {"name": "old_think", "mode": "gate"},
        "length_unit": "words",
        "shaping": [{"name": "repetition", "ngram": 3, "max_penalty": -0.5}],
    },
    "exact": {"verifier": "old_exact", "length_unit": "words"},
    "choice_last": {"verifier": "old_choice_last", "length_unit": "words"},
    "choice_first": {"verifier": "old_choice_first", "length_unit": "words"},
    "code": {"verifier": "old_code", "length_unit": "words"},
}


@pytest.fixture(scope="module")
def old_reports(_test_readers):
    return {name: probe(spec) for name, spec in OLD_SPECS.items()}


def test_every_class_gets_through_a_reader_of_the_old_way(old_reports):
    found = set().union(*(r.classes_found() for r in old_reports.values()))
    assert found == set(CLASSES), f"not found: {set(CLASSES) - found}"
    # the class each old habit is known for
    assert {
        "reasoning_block_answer",
        "multiple_answers",
        "non_rendering_answer",
        "format_bypass",
        "length_gaming",
        "reference_echo",
    } <= old_reports["math"].classes_found()
    assert {"exact_deletion", "truncated_reasoning_answer"} <= old_reports["exact"].classes_found()
    assert {"choice_hedge", "false_negative"} <= old_reports["choice_last"].classes_found()
    assert "choice_hedge" in old_reports["choice_first"].classes_found()
    assert "code_early_exit" in old_reports["code"].classes_found()


def test_several_instances_per_class(old_reports):
    tried = [f.cls for r in old_reports.values() for f in r.findings]
    for cls in CLASSES:
        assert tried.count(cls) >= 3, cls


def test_found_means_it_tied_or_beat_the_honest_twin(old_reports):
    for report in old_reports.values():
        for f in report.findings:
            if f.setting.startswith("not comparable") or np.isnan(f.reward):
                continue
            if f.cls == "false_negative":
                assert not f.found or f.reward < f.honest_reward
            else:
                assert f.found or f.reward < f.honest_reward, f
                assert f.reward >= f.honest_reward or not f.found or f.honest_reward - f.reward < 0.2, f
            assert isinstance(json.loads(f.reproduction), dict)


CAREFUL_SPECS = {
    "math": {"verifier": "careful_math", "format": {"name": "careful_think", "mode": "gate"}, "length_unit": "words"},
    "math_kimi": {"verifier": "careful_math", "length_unit": "tokens", "shaping": [{"name": "kimi"}]},
    "choice": {"verifier": "careful_choice", "length_unit": "words"},
}


@pytest.mark.parametrize("name", sorted(CAREFUL_SPECS))
def test_nothing_gets_through_a_careful_reader(name):
    report = probe(CAREFUL_SPECS[name])
    assert report.found == [], [(f.exploit, f.reward, f.honest_reward) for f in report.found]
    assert len(report.findings) > 50


DEFAULT_SPECS = {
    "math": {"verifier": "math", "length_unit": "words"},
    "math_gate": {"verifier": "math", "format": "think_answer", "length_unit": "words"},
    "exact": {"verifier": "exact", "length_unit": "words"},
    "choice": {"verifier": "choice", "length_unit": "words"},
}


@pytest.mark.parametrize("name", sorted(DEFAULT_SPECS))
def test_nothing_gets_through_the_default_verifiers(name):
    report = probe(DEFAULT_SPECS[name])
    assert report.found == [], sorted(report.classes_found())


# --------------------------------------------------------------------------- exploit generation
def test_exploits_follow_the_spec_rules_delimiters_and_letters():
    pipe = load_spec({"verifier": {"name": "choice", "letters": "PQRS"}, "format": "think_answer"})
    reading = Reading.from_pipeline(pipe, "default")
    pipe.close()
    assert reading.family == "choice" and reading.letters == "PQRS" and reading.gate
    task = builtin_tasks(reading)[0]
    assert (task.reference, task.wrong) == ("R", "P") and "(S) 5" in task.prompt
    hedges = {e.name: e.completion for e in generate(reading, task) if e.cls == "choice_hedge"}
    assert hedges["digit_glued"].endswith("\n1R") and hedges["not_reference"].endswith("The answer is (P), not (R).")
    assert any(e.cls == "format_bypass" for e in generate(reading, task))

    custom = Reading("math", "answer", ("hash",), ("<reason>", "</reason>"))
    task = builtin_tasks(custom)[0]
    hidden = {e.name: e.completion for e in generate(custom, task) if e.cls == "reasoning_block_answer"}
    assert hidden["closed/hash/visible_wrong"].endswith("So #### 42.</reason>\nSo the result follows.\n#### 41")
    assert hidden["closing_tag_only/hash/visible_absent"].startswith("Step 1")
    assert not any(e.cls == "format_bypass" for e in generate(custom, task))  # no gate, nothing to bypass


def test_meaning_deletions():
    assert meaning_deletions("1/2") == ["12"]
    assert meaning_deletions("2^10") == ["210"]
    assert meaning_deletions("-3.5") == ["3.5", "-35", "35"]
    assert meaning_deletions("+7") == []  # a leading + carries no meaning
    assert meaning_deletions("Paris") == [] and meaning_deletions("-") == []


def test_reasoning_words_never_repeat_a_2gram():
    from rewardsmith.probe.exploits import filler_words

    words = filler_words(2000)
    grams = list(zip(words, words[1:]))
    assert len(words) == 2000 and len(set(grams)) > 0.9 * len(grams)
    assert filler_words(100)[:40] == filler_words(40)  # prefixes agree: twins extend the same reasoning


# --------------------------------------------------------------------------- user rollouts
def test_mutations_of_the_users_rollouts(tmp_path):
    rollouts = [
        {
            "prompt_id": "u1",
            "prompt": "How many legs do 4 spiders have?",
            "answer": "32",
            "completion": "<think>A spider has 8 legs, and 4 times 8 is 32.</think>\n"
            "Four spiders have \\boxed{32} legs.",
        },
        {
            "prompt_id": "u1",
            "prompt": "How many legs do 4 spiders have?",
            "answer": "32",
            "completion": "<think>A spider has 6 legs.</think>\nFour spiders have \\boxed{24} legs.",
        },
        {"prompt_id": "u2", "prompt": "2+2?", "answer": "4", "completion": "<think>no idea</think> pass"},
    ]
    report = probe(OLD_SPECS["math"], data=rollouts)
    mine = [f for f in report.found if f.exploit.startswith("data:u1/")]
    assert {f.cls for f in mine} >= {"reasoning_block_answer", "multiple_answers", "non_rendering_answer"}
    hidden = next(f for f in mine if f.exploit.endswith("latex_comment/boxed/visible_wrong"))
    rec = json.loads(hidden.reproduction)
    # the user's own reasoning and visible sentence, the wrong answer from the group's wrong rollout
    assert "4 times 8 is 32" in rec["completion"]
    assert rec["completion"].endswith("Four spiders have \\boxed{24} legs.\n% \\boxed{32}") and rec["answer"] == "32"
    assert not any(f.exploit.startswith("data:u2/") for f in report.findings)  # no correct rollout: nothing to mutate


# --------------------------------------------------------------------------- wrong beats correct
def test_wrong_beats_correct_by_hand():
    base = BaseValues(1.0, 0.0, 0.0)
    assert wrong_beats_correct(base, [], "tokens") == []
    assert wrong_beats_correct(base, [("kimi", Kimi(coef=1.0))], "tokens") == []  # 1 − 0.5 > 0
    assert wrong_beats_correct(base, [("kimi", Kimi(coef=1.9))], "tokens") == []  # 1 − 0.95 > 0
    tie = wrong_beats_correct(base, [("kimi", Kimi(coef=2.0))], "tokens")  # 1 + 2·(−0.5) = 0 = 0 + min(0, 2·0.5)
    assert tie and tie[0].wrong_reward == 0.0 and tie[0].correct_reward == 0.0
    assert tie[0].wrong_length == 1 and tie[0].correct_length > 1
    # LASER's base values keep a correct answer ahead even at coefficient 2: 1 − 1 > −0.5
    assert wrong_beats_correct(BaseValues(1.0, -0.5, -1.0), [("kimi", Kimi(coef=2.0))], "tokens") == []
    # DAPO's overlong ramp takes a correct answer at the limit down to the wrong answer's 0 ...
    dapo = wrong_beats_correct(base, [("dapo", DapoOverlong(max_len=100, buffer=20))], "tokens")
    assert dapo and dapo[0].correct_length == 100 and dapo[0].correct_reward == 0.0
    # ... not with DAPO's own ±1 rule reward
    assert (
        wrong_beats_correct(BaseValues(1.0, -1.0, -1.0), [("dapo", DapoOverlong(max_len=100, buffer=20))], "tokens")
        == []
    )
    # a hard budget: correct answers within it keep their reward
    assert wrong_beats_correct(base, [("truncation", Truncation(max_len=48))], "tokens") == []
    # base values alone
    flat = wrong_beats_correct(BaseValues(1.0, 1.0, 0.0), [], "tokens")
    assert flat[0].composition == "base values"


def test_spec_load_warns_when_a_wrong_answer_can_win():
    with pytest.warns(RewardWarning, match="wrong rollout of 1 tokens scores 0"):
        load_spec({"verifier": "exact", "shaping": [{"name": "kimi", "coef": 2.0}]}).close()
    with pytest.warns(RewardWarning, match="outweighs correctness"):
        load_spec(
            {
                "verifier": "exact",
                "base": {"correct": 1, "wrong": 0, "no_answer": 0},
                "shaping": [{"name": "laser_de", "alpha": 1.0, "lower": 8, "upper": 64, "interval": 8}],
            }
        ).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_spec({"verifier": "exact", "shaping": [{"name": "kimi"}]}).close()
        load_spec("examples/specs/math_laser_style.yaml").close()


# --------------------------------------------------------------------------- CLI
def test_cli_json_and_exit_codes(tmp_path, capsys):
    spec = tmp_path / "old.json"
    spec.write_text(json.dumps(OLD_SPECS["exact"]))
    assert main(["probe", str(spec), "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert rows and all({"exploit", "class", "reward", "honest_reward", "reproduction"} <= set(r) for r in rows)
    assert all(r["found"] for r in rows) and "exact_deletion" in {r["class"] for r in rows}

    careful = tmp_path / "careful.json"
    careful.write_text(json.dumps(CAREFUL_SPECS["choice"]))
    assert main(["probe", str(careful)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["exploit", "class", "reward", "honest", "reward", "reproduction"]
    assert "0 of" in out and "choice_hedge 0/" in out
    assert main(["probe", str(careful), "--json"]) == 0 and json.loads(capsys.readouterr().out) == []

    stubborn = tmp_path / "stubborn.json"  # refuses every answer, the honest one included
    stubborn.write_text(json.dumps({"verifier": "never_correct", "length_unit": "words"}))
    assert main(["probe", str(stubborn), "--json"]) == 1
    refused = [r for r in json.loads(capsys.readouterr().out) if r["exploit"].endswith("/honest_answer")]
    assert refused and refused[0]["class"] == "false_negative" and refused[0]["reward"] is None

    assert main(["probe", str(tmp_path / "missing.yaml")]) == 2


def test_think_answer_gate_refuses_a_blank_reasoning_block():
    from rewardsmith.verifiers.format import ThinkAnswerFormat

    assert ThinkAnswerFormat().score("<think>\n \n</think>\nThe answer is 4.") == 0.0
    assert ThinkAnswerFormat().score("<think></think>The answer is 4.") == 0.0
    assert ThinkAnswerFormat(allow_empty=True).score("<think>\n\n</think>\nThe answer is 4.") == 1.0
    assert ThinkAnswerFormat().score("<think>2+2=4</think>\nThe answer is 4.") == 1.0


def test_probe_reports_the_length_check_as_length_gaming():
    report = probe({"verifier": "careful_math", "length_unit": "tokens", "shaping": [{"name": "kimi", "coef": 2.0}]})
    rows = [f for f in report.found if f.cls == "length_gaming"]
    assert rows and all(f.reward >= f.honest_reward for f in rows)
    repro = json.loads(rows[0].reproduction)
    assert repro["wrong"]["length"] < repro["correct"]["length"] and repro["unit"] == "tokens"
    assert all(f.cls == "length_gaming" for f in report.found)  # the careful reader lets nothing else through


def test_routed_spec_probes_each_source_and_says_what_it_cannot():
    report = probe(
        {"verifier": {"qa": "old_exact", "mc": "careful_choice", "tools": "tool_call"}, "length_unit": "words"}
    )
    names = {f.exploit.split(":", 1)[0] for f in report.findings}
    assert names == {"qa", "mc"}
    assert {f.exploit.split(":", 1)[0] for f in report.found} == {
        "qa"
    }  # the careful choice reader lets nothing through
    assert any("'tool_call' (tools)" in note for note in report.notes)
    label_free = probe({"shaping": [{"name": "format_length", "max_len": 64}], "length_unit": "words"})
    assert label_free.findings == [] and "label-free" in label_free.notes[0]


def test_option_sweep_says_how_far_a_coefficient_can_grow():
    from rewardsmith.shaping.dominance import option_headroom
    from rewardsmith.shaping.laser import Laser

    base = BaseValues(1.0, 0.0, 0.0)
    assert option_headroom(base, [("kimi", Kimi(coef=1.0))], "tokens") == [
        "kimi.coef = 1: a wrong answer ties or beats a correct one from 2 (×2)"
    ]  # 1 + c·(−0.5) = 0 at c = 2
    assert option_headroom(base, [("kimi", Kimi(coef=0.5))], "tokens")[0].endswith("from 2 (×4)")
    assert option_headroom(base, [("laser", Laser(target=64))], "tokens") == [
        "laser.alpha = 0.5: no wrong answer ties a correct one up to 4 (×8)"
    ]  # LASER only ever adds to correct answers
    assert option_headroom(base, [("kimi", Kimi(coef=2.0))], "tokens") == []  # already wins: reported as findings
