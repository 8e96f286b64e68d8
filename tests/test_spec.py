import pytest

from rewardsmith import SpecError, load_spec, parse_spec


def test_yaml_toml_and_dict_give_the_same_spec(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "verifier: {name: exact, case_sensitive: true}\nbase: {correct: 1, wrong: -0.5, no_answer: -1}\nlength_unit: words\n"
    )
    (tmp_path / "s.toml").write_text(
        'length_unit = "words"\n[verifier]\nname = "exact"\ncase_sensitive = true\n[base]\ncorrect = 1\nwrong = -0.5\nno_answer = -1\n'
    )
    d = {
        "verifier": {"name": "exact", "case_sensitive": True},
        "base": {"correct": 1, "wrong": -0.5, "no_answer": -1},
        "length_unit": "words",
    }
    a, b, c = parse_spec(tmp_path / "s.yaml"), parse_spec(tmp_path / "s.toml"), parse_spec(d)
    assert a.fingerprint() == b.fingerprint() == c.fingerprint()
    assert a.name == "s" and c.name is None


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"verifier": "maths"},
            r"verifier: unknown verifier 'maths'; allowed: .*exact, judge, math, per_turn, reasoning_gym",
        ),
        ({"verifier": {"name": "math", "extract": ["nope"]}}, r"verifier\(math\)\.extract\.0: Input should be 'boxed'"),
        (
            {"verifier": {"name": "exact", "tolerance": 1}},
            r"verifier\(exact\)\.tolerance: unknown option; allowed: extract, case_sensitive",
        ),
        ({"verifier": {"case_sensitive": True, "x": 1}}, r"verifier\.case_sensitive: expected a name or a mapping"),
        ({"verifier": {"math": {"nm": "x"}}}, r"verifier\.math: missing 'name'"),
        ({"shaping": [{"name": "nope"}]}, r"shaping\[0\]: unknown shaper 'nope'; allowed: .*repetition"),
        (
            {"shaping": [{"name": "repetition", "ngram": 0}]},
            r"shaping\[0\]\(repetition\)\.ngram: Input should be greater than or equal to 1",
        ),
        ({"advantage": {"name": "nope"}}, r"advantage: unknown advantage 'nope'"),
        (
            {"format": "thinking"},
            r"format: unknown format 'thinking'; allowed: code_format, reasoning_steps, tag_count, think_answer",
        ),
        ({"format": {"name": "think_answer", "mode": "multiply"}}, r"format\.mode: Input should be 'gate' or 'add'"),
        ({"length_unit": "bytes"}, r"length_unit: Input should be 'tokens', 'words' or 'chars'"),
        ({"verifierr": "math"}, r"verifierr: unknown option; allowed: name, verifier, base"),
        ({"timeout_s": 0}, r"timeout_s: Input should be greater than 0"),
        ({"base": {"right": 1}}, r"base\.right: unknown option; allowed: correct, wrong, no_answer"),
        ({"verifier": {}}, r"verifier: an empty data_source map"),
    ],
)
def test_spec_errors_name_the_field_and_allowed_values(spec, message):
    with pytest.raises(SpecError, match=message):
        load_spec(spec)


def test_spec_file_errors(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        parse_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("verifier: [unclosed\n")
    with pytest.raises(SpecError, match="bad.yaml: not valid YAML"):
        parse_spec(bad)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        parse_spec(tmp_path / "list.yaml")


def test_fingerprint_ignores_paths_and_workers_but_not_rewards():
    a = parse_spec({"verifier": "math", "state": "a.json", "workers": 1})
    b = parse_spec({"verifier": "math", "state": "b.json", "workers": 2, "timeout_s": 9})
    c = parse_spec({"verifier": "math", "base": {"wrong": -1}})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_overrides_and_data_source_map():
    pipe = load_spec({"verifier": {"gsm": "exact", "default": {"name": "math"}}}, workers=1)
    assert pipe.spec.workers == 1
    assert set(pipe.verifiers) == {"gsm", "default"}
    assert pipe.verifiers["gsm"].name == "exact" and pipe.verifiers["default"].name == "math"


def test_format_shorthand():
    pipe = load_spec({"format": "think_answer"})
    assert pipe.spec.format.mode == "gate" and pipe.format.name == "think_answer"
    pipe = load_spec({"format": {"name": "think_answer", "answer_tag": True, "mode": "add", "weight": 0.5}})
    assert pipe.format.options.answer_tag is True and pipe.spec.format.weight == 0.5


def test_yaml_alias_bomb_nested_in_allowed_mappings_fails_fast(tmp_path):
    """Billion laughs inside ``shaping`` options: refused from the event stream, never expanded."""
    lines = [
        "verifier: math",
        "shaping:",
        "  - name: laser",
        "    target: 10",
        "    extra:",
        '      a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for i in range(1, 10):
        lines.append(f"      a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(10))}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match=r"bomb.yaml: line 6: YAML anchors and aliases \(&a0\) are not allowed"):
        load_spec(bomb)  # expanded, it would be 10^10 strings
    alias_only = tmp_path / "alias.yaml"
    alias_only.write_text("base: {correct: 1.0}\nverifier: math\nname: *x\n")
    with pytest.raises(SpecError, match="alias.yaml"):  # an undefined alias is still refused with the file named
        load_spec(alias_only)


def test_oversized_or_binary_spec_file_is_a_spec_error(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("verifier: math\n" + "# pad\n" * 200_000)
    with pytest.raises(SpecError, match="too large for a spec"):
        parse_spec(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"verifier: \xff\xfe\n")
    with pytest.raises(SpecError, match="bin.yaml: not UTF-8"):
        parse_spec(binary)
