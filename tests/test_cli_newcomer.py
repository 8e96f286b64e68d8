"""What a new user meets first: help texts, bad arguments, pipes, and the docs' own examples run as written."""

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardsmith.analysis.cli import FLAG_THRESHOLDS
from rewardsmith.cli import build_parser, main
from rewardsmith.lab.cli import PRESET_NAMES, PRESET_TIMES

ROOT = Path(__file__).resolve().parents[1]
SCORED = ROOT / "examples" / "scored" / "verbose.jsonl"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_with_closed_stdout(args: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI with stdout a pipe whose reader has already gone, as in ``rewardsmith list | head``
    once head has exited (closing the reader first makes the broken pipe certain, not a race)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "rewardsmith", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=ROOT,
            env=ENV,
        )
    finally:
        os.close(write_end)


def subcommands(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from subcommands(sub, f"{prefix}{name} ")


# ------------------------------------------------------------------ list
def test_list_verbose_shows_factory_defaults_and_required(capsys):
    assert main(["list", "-v", "--kind", "shaper"]) == 0
    out = capsys.readouterr().out
    assert "PydanticUndefined" not in out
    assert "penalty={'name': 'kimi'}" in out  # grpo_lambda's default comes from a factory
    assert re.search(r"laser\s.*\n\s+options: target=required,", out)
    assert out.startswith("shapers:\n")


# ------------------------------------------------------------------ pipes
@pytest.mark.parametrize("args", [["list", "-v"], ["eval", "tradeoff", str(SCORED), "--out", "{tmp}"]])
def test_closed_stdout_ends_quietly(args, tmp_path):
    proc = run_with_closed_stdout([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode == 128 + 13, proc.stderr  # what a tool killed by SIGPIPE reports
    assert proc.stderr == ""


def test_broken_pipe_elsewhere_is_not_swallowed(monkeypatch):
    """Only a closed stdout is a quiet exit: a broken pipe to anything else (a worker) still raises."""

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("rewardsmith.cli._cmd_list", broken)
    with pytest.raises(BrokenPipeError):
        main(["list"])


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("rewardsmith.cli._cmd_list", interrupted)
    assert main(["list"]) == 128 + 2
    assert capsys.readouterr().err == "rewardsmith list: interrupted\n"


# ------------------------------------------------------------------ paths and names
@pytest.mark.parametrize(
    "args, prefix",
    [
        (["score", "{dir}", "--spec", "{dir}"], "rewardsmith score: error: Is a directory: "),
        (["audit", "{dir}", "--out", "{tmp}"], "rewardsmith audit: error: Is a directory: "),
        (["eval", "lcwr", "{dir}", "--out", "{tmp}"], "rewardsmith eval lcwr: error: Is a directory: "),
        (["eval", "wildbench", "{tmp}/missing.jsonl"], "rewardsmith eval wildbench: error: file not found: "),
    ],
)
def test_a_wrong_path_is_one_line_naming_the_command(args, prefix, tmp_path, capsys):
    assert main([a.format(dir=ROOT / "examples", tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(prefix) and err.count("\n") == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and re.fullmatch(r"rewardsmith \d+\.\d+\.\d+\n", capsys.readouterr().out)


# ------------------------------------------------------------------ help and argument checks
def test_every_option_with_a_default_says_so():
    missing = []
    for name, sub in subcommands(build_parser()):
        for action in sub._actions:
            if (
                not action.option_strings
                or action.help == argparse.SUPPRESS
                or isinstance(action, argparse._HelpAction)
            ):
                continue
            if action.default in (None, False, [], argparse.SUPPRESS):
                continue
            if "default" not in (action.help or ""):
                missing.append(f"{name} {action.option_strings[-1]}")
    assert not missing, missing


def test_serve_help_shows_its_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in (
        "(default: 127.0.0.1",
        "(default: 8000)",
        "(default: 16.0 MiB)",
        "(default: 4)",
        "(default: every 60.0 s)",
        "(default: info)",
    ):
        assert shown in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["score", "r.jsonl", "--spec", "s.yaml", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["score", "r.jsonl", "--spec", "s.yaml", "--timeout-s", "0"], "argument --timeout-s: must be greater than 0"),
        (["score", "r.jsonl", "--spec", "s.yaml", "--timeout-s", "-1"], "argument --timeout-s: must be greater than 0"),
        (["score", "r.jsonl", "--spec", "s.yaml", "--timeout-s", "inf"], "expected a finite number"),
        (["score", "r.jsonl", "--spec", "s.yaml", "--step", "-1"], "argument --step: must be 0 or more"),
        (
            ["score", "r.jsonl", "--spec", "s.yaml", "--workers", "two"],
            "argument --workers: expected an integer, got 'two'",
        ),
        (["serve", "--spec", "s.yaml", "--port", "0"], "argument --port: must be at least 1"),
        (["serve", "--spec", "s.yaml", "--port", "70000"], "must be a port number 1..65535"),
        (["serve", "--spec", "s.yaml", "--max-concurrency", "0"], "argument --max-concurrency"),
        (["serve", "--spec", "s.yaml", "--save-every-s", "0"], "argument --save-every-s"),
        (["serve", "--spec", "s.yaml", "--num-generations", "0"], "argument --num-generations"),
        (["serve", "--spec", "s.yaml", "--log-level", "loud"], "argument --log-level: invalid choice"),
        (["lab", "--threads", "0"], "argument --threads"),
        (["eval", "lcwr", "j.jsonl", "--folds", "0"], "argument --folds"),
        (["eval", "lcwr", "j.jsonl", "--baseline-weight", "-0.2"], "argument --baseline-weight: must be 0 or more"),
        (["eval", "wildbench", "w.jsonl", "--margin", "-5"], "argument --margin: must be 0 or more"),
        (["eval", "tradeoff", "a.jsonl", "--k", "0"], "argument --k: must be at least 1"),
    ],
)
def test_bad_numbers_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------ audit thresholds
def documented_thresholds() -> dict[str, str]:
    """{flag: threshold NAME} from the flags table in docs/analysis.md."""
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", (ROOT / "docs" / "analysis.md").read_text(), flags=re.M)
    return dict(rows)


def test_docs_list_the_threshold_names_the_cli_accepts(tmp_path, capsys):
    documented = documented_thresholds()
    assert documented == FLAG_THRESHOLDS
    args = ["audit", str(SCORED), "--out", str(tmp_path)]
    for name in documented.values():
        args += ["--threshold", f"{name}=0.9"]
    assert main(args) == 0
    result = json.loads((tmp_path / "audit.json").read_text())
    assert all(result["thresholds"][name] == 0.9 for name in documented.values())
    for flag in result["flags"]:
        assert flag["threshold"] == 0.9


@pytest.mark.parametrize(
    "item, message",
    [
        ("length_correlation=-1", "audit threshold length_correlation must be in [0.0, 1.0], got -1.0"),
        ("truncation_rate=1.5", "audit threshold truncation_rate must be in [0.0, 1.0], got 1.5"),
        ("truncation_rate=nan", "audit threshold truncation_rate must be in [0.0, 1.0], got nan"),
        ("reward_rise=-0.1", "audit threshold reward_rise must be at least 0.0"),
        ("ngram=0", "audit threshold ngram must be at least 1, got 0"),
        ("min_rollouts=2", "audit threshold min_rollouts must be at least 3, got 2"),
        ("min_rollouts=abc", "min_rollouts takes an integer"),
        ("length_hacking=0.3", "the flag length_hacking is raised by the threshold length_correlation"),
    ],
)
def test_bad_threshold_is_a_clear_error(item, message, tmp_path, capsys):
    assert main(["audit", str(SCORED), "--threshold", item, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


# ------------------------------------------------------------------ eval wildbench
def test_wildbench_margin_line_reads_as_a_sentence(tmp_path, capsys):
    rows = tmp_path / "wb.jsonl"
    rows.write_text(json.dumps({"outcome": "A+", "output_model": "x" * 900, "output_base": "y" * 100}) + "\n")
    assert main(["eval", "wildbench", str(rows), "--out", str(tmp_path / "a")]) == 0
    assert "length margin K: off (no slight win becomes a tie)" in capsys.readouterr().out
    assert main(["eval", "wildbench", str(rows), "--out", str(tmp_path / "b"), "--margin", "500"]) == 0
    assert "length margin K: 500 characters" in capsys.readouterr().out


# ------------------------------------------------------------------ lab presets: help and docs agree
def test_lab_help_and_docs_state_the_same_preset_times(capsys):
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    docs = (ROOT / "docs" / "lab.md").read_text()
    presets = docs[docs.index("Presets (wall time") :]
    for name in PRESET_NAMES:
        line = re.search(rf"^- `{name}`[^\n]*", presets, flags=re.M).group(0)
        assert PRESET_TIMES[name] in line and f"{name}: " in help_text and PRESET_TIMES[name] in help_text
    assert "does not learn the task" in help_text and "does not learn the task" in presets


# ------------------------------------------------------------------ the integrations doc's curl example
def quick_check_commands() -> tuple[str, str, str]:
    """The ``rewardsmith serve`` and ``curl`` commands of the quick check in docs/integrations.md, as written,
    and the answer the doc says it prints."""
    doc = (ROOT / "docs" / "integrations.md").read_text()
    block = re.search(r"Quick check.*?```bash\n(.*?)```", doc, flags=re.S).group(1).replace("\\\n", " ")
    serve = next(line for line in block.splitlines() if line.startswith("rewardsmith serve"))
    curl = next(line for line in block.splitlines() if line.startswith("curl"))
    expected = re.search(r"It prints `(\{.*?\})`", doc[doc.index("Quick check") :]).group(1)
    return serve.rstrip(" &"), curl, expected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="the doc's example uses curl")
def test_integrations_doc_quick_check_runs_as_written():
    serve, curl, expected = quick_check_commands()
    assert "--port 8000" in serve and "localhost:8000" in curl
    port = str(free_port())
    argv = shlex.split(serve.replace("--port 8000", f"--port {port}"))
    assert argv[0] == "rewardsmith"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rewardsmith", *argv[1:], "--log-level", "warning"],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            up = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"localhost:{port}/healthz"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if up.stdout == "200":
                break
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        answer = subprocess.run(
            curl.replace("localhost:8000", f"localhost:{port}") + " -w '\\n%{http_code}'",
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        body, status = answer.stdout.rsplit("\n", 1)
        assert status == "200", body
        assert json.loads(body) == json.loads(expected)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
