"""Scorer hyperparameters are checked against their declared type and range when a spec is parsed, on every path a
value comes in by (the command line, a plan, the Python API), and refused in one line before any model loads; a
bug is an ``InternalError`` with its own exit status, never reported as the user's input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llm_mia.cli import INTERNAL_ERROR, USER_ERROR, main
from llm_mia.errors import InternalError, LlmMiaError, ParameterError, UnknownNameError
from llm_mia.evidence.plan import Plan
from llm_mia.scoring.scorers import ScorerCall, all_scorers, get_scorer, parse_scorer_specs, register
from llm_mia.scoring.scorers.params import Boolean, Interval, Options, Text

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "llm_mia" / "data" / "sample.jsonl"

# ------------------------------------------------------------------------------------ the constraints


def test_an_interval_parses_its_type_and_holds_its_ends_as_declared() -> None:
    k = Interval(float, 0, 1, closed="right")
    assert k.describe() == "a float in (0, 1]"
    assert k.parse("0.5") == 0.5 and k.problem(0.5) is None and k.problem(1.0) is None
    assert k.problem(0.0) == "is out of range" and k.problem(1.0000001) == "is out of range"
    assert k.problem(math.nan) == "is not a number" and k.problem(math.inf) == "is out of range"
    with pytest.raises(ValueError, match="is not a float"):
        k.parse("abc")
    n = Interval(int, 1, None)
    assert n.describe() == "an integer >= 1" and n.parse("3") == 3
    with pytest.raises(ValueError, match="is not an integer"):
        n.parse("2.5")  # never rounded to 2
    assert n.problem(True) == "is not an integer"  # a bool is not a count
    assert n.problem(0) == "is out of range"
    assert Interval(float, 0, None, closed="neither").describe() == "a float > 0"
    assert Interval(float, None, 3, closed="left").describe() == "a float < 3"
    assert Interval(int).describe() == "an integer" and Interval(int).problem(-7) is None
    assert Interval(float, 0, 1).describe() == "a float in [0, 1]" and Interval(float, 0, 1).problem(0.0) is None


def test_options_text_and_booleans() -> None:
    norms = Options(float, (1.0, 2.0, math.inf))
    assert norms.describe() == "one of 1, 2, inf"
    assert norms.parse("inf") == math.inf and norms.problem(norms.parse("1")) is None
    assert norms.problem(3.0) == "is not allowed"
    convention = Options(str, ("matched", "published"))
    assert convention.problem("published") is None and convention.problem("Matched") == "is not allowed"
    assert Text().problem("") == "is empty" and Text(empty=True).problem("") is None
    flag = Boolean()
    # a bool is never parsed as bool(text): bool("false") would be True
    assert [flag.parse(word) for word in ("true", "FALSE", "yes", "No", "1", "0")] == [1, 0, 1, 0, 1, 0]
    assert flag.parse("false") is False
    for word in ("maybe", "", "2", "on"):
        with pytest.raises(ValueError, match="is not a boolean"):
            flag.parse(word)
    assert flag.problem(1) == "is not a boolean"


# ------------------------------------------------------------------------------------ the registry


def test_every_registered_hyperparameter_declares_a_constraint_its_default_meets() -> None:
    for scorer in all_scorers().values():
        assert set(scorer.constraints) == set(scorer.defaults), scorer.name
        for key, constraint in scorer.constraints.items():
            assert constraint.problem(scorer.defaults[key]) is None, (scorer.name, key)


def test_a_registration_without_declarations_or_with_a_default_out_of_range_is_refused() -> None:
    def undeclared(target, *, k: float = 0.2) -> float:
        """Nothing. Direction: higher = more likely member."""
        return 0.0

    def bad_default(target, *, k: float = 2.0) -> float:
        """Nothing. Direction: higher = more likely member."""
        return 0.0

    def mismatched(target, *, k: int = 1) -> float:
        """Nothing. Direction: higher = more likely member."""
        return 0.0

    with pytest.raises(TypeError, match="declare the type and allowed values of k"):
        register("test_undeclared")(undeclared)
    with pytest.raises(TypeError, match=r"default k=2.0 is out of range \(a float in \(0, 1\]\)"):
        register("test_bad_default", constraints={"k": Interval(float, 0, 1, closed="right")})(bad_default)
    with pytest.raises(TypeError, match="k is annotated int but constrained to float values"):
        register("test_mismatched", constraints={"k": Interval(float, 0, None)})(mismatched)
    with pytest.raises(TypeError, match="constraints for q, which are not hyperparameters"):
        register("test_extra", constraints={"k": Interval(float, 0, 1), "q": Text()})(undeclared)
    assert not any(name.startswith("test_") for name in all_scorers())


BAD_SPECS = [
    ("min_k:k=2", "scorer 'min_k': k=2 is out of range; k must be a float in (0, 1]"),
    ("min_k:k=0", "scorer 'min_k': k=0 is out of range; k must be a float in (0, 1]"),
    ("min_k:k=nan", "scorer 'min_k': k=nan is not a number; k must be a float in (0, 1]"),
    ("min_k:k=abc", "scorer 'min_k': k=abc is not a float; k must be a float in (0, 1]"),
    ("min_k:k=0.1,0.5,1.5", "scorer 'min_k': k=1.5 is out of range"),  # one bad value of a grid refuses the grid
    ("min_k_plus_plus:k=-0.2", "scorer 'min_k_plus_plus': k=-0.2 is out of range; k must be a float in (0, 1]"),
    ("gradnorm:p=3", "scorer 'gradnorm': p=3 is not allowed; p must be one of 1, 2, inf"),
    ("neighbourhood:n=0", "scorer 'neighbourhood': n=0 is out of range; n must be an integer >= 1"),
    ("neighbourhood:n=2.5", "scorer 'neighbourhood': n=2.5 is not an integer; n must be an integer >= 1"),
    ("recall:shots=-1", "scorer 'recall': shots=-1 is out of range; shots must be an integer >= 0"),
    ("recall:convention=paper", "scorer 'recall': convention=paper is not allowed; convention must be one of matched"),
    ("dc_pdd:a=0", "scorer 'dc_pdd': a=0 is out of range; a must be a float > 0"),
    ("dc_pdd:corpus=", "scorer 'dc_pdd': corpus='' is empty; corpus must be a non-empty text"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS, ids=[spec for spec, _ in BAD_SPECS])
def test_a_value_outside_its_declared_range_is_refused_when_the_spec_is_parsed(spec: str, message: str) -> None:
    with pytest.raises(ParameterError) as error:
        parse_scorer_specs([spec], has_reference=False)
    assert str(error.value).startswith(message)
    assert isinstance(error.value, LlmMiaError)  # the user's to fix: exit status 2 on the command line


def test_values_at_the_ends_of_their_ranges_are_accepted() -> None:
    specs = ["min_k:k=1", "gradnorm:p=1,inf", "neighbourhood:n=1;seed=-3", "recall:shots=0;convention=published"]
    calls = parse_scorer_specs(specs, has_reference=False)
    assert [c.params for c in calls] == [
        {"k": 1.0},
        {"p": 1.0},
        {"p": math.inf},
        {"n": 1, "generator": "word-swap", "seed": -3},
        {"prefix": "", "shots": 0, "convention": "published"},
    ]


def test_a_call_built_in_python_is_checked_too() -> None:
    min_k = get_scorer("min_k")
    with pytest.raises(ParameterError, match=r"scorer 'min_k': k=2.0 is out of range"):
        ScorerCall(min_k, {"k": 2.0})
    with pytest.raises(ParameterError, match="k=True is not a float"):
        ScorerCall(min_k, {"k": True})
    with pytest.raises(UnknownNameError, match="no hyperparameter 'q'; it takes: k"):
        ScorerCall(min_k, {"q": 0.1})
    assert ScorerCall(min_k, {"k": 1}).column == "min_k[k=1]"  # an int is a float's value, kept as given


def test_a_plan_writes_specs_that_parse_back_to_the_same_calls() -> None:
    specs = [
        "loss",
        "min_k:k=0.1,1",
        "gradnorm:p=inf",
        "neighbourhood:n=3;seed=-1",
        "recall:prefix=non-members.jsonl;shots=2",
        "dc_pdd:a=0.5",
    ]
    calls = parse_scorer_specs(specs, has_reference=False)
    plan = Plan({"settings": {"scorers": [call.describe() for call in calls]}})
    again = parse_scorer_specs(plan.scorer_specs(), has_reference=False)
    assert [(c.column, dict(c.params)) for c in again] == [(c.column, dict(c.params)) for c in calls]


def test_a_boolean_hyperparameter_reads_false_as_false(tmp_path: Path) -> None:
    """In a fresh interpreter (a registration lasts the process): ``flag=false`` is False, ``flag=maybe`` refused."""
    script = textwrap.dedent(
        """
        from llm_mia.errors import ParameterError
        from llm_mia.scoring.scorers import parse_scorer_specs, register
        from llm_mia.scoring.scorers.params import Boolean

        @register("flagged", constraints={"flag": Boolean()})
        def flagged(target, *, flag: bool = True) -> float:
            '''-1 or 1. Direction: higher = more likely member.'''
            return 1.0 if flag else -1.0

        words = ("false", "no", "0", "TRUE", "Yes")
        print([parse_scorer_specs([f"flagged:flag={w}"], has_reference=False)[0].params["flag"] for w in words])
        try:
            parse_scorer_specs(["flagged:flag=maybe"], has_reference=False)
        except ParameterError as error:
            print(error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[False, False, False, True, True]",
        "scorer 'flagged': flag=maybe is not a boolean (write true/false, yes/no or 1/0); flag must be a boolean "
        "(true/false, yes/no, 1/0) (default True)",
    ]


# ------------------------------------------------------------------------------------ through the command line

# Runs each command line through the real command line, in one fresh interpreter (one start-up for all), and says
# for each its exit status, what it printed on stderr, and whether torch had been imported: no model loads without it.
DRIVER = """
import contextlib, io, json, sys
from llm_mia.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(argv)
    results.append({"status": status, "stderr": err.getvalue(), "torch": "torch" in sys.modules})
print(json.dumps(results))
"""

COMMANDS = {
    "score": ["score", "--input", str(SAMPLE), "--scorers", "loss", "min_k:k=2", "--output", "scores.jsonl"],
    "evaluate": ["evaluate", "--input", str(SAMPLE), "--scorers", "min_k:k=2"],
    "dataset-test": [
        *("dataset-test", "--suspect", str(SAMPLE), "--control", str(SAMPLE), "--output-dir", "report"),
        *("--scorers", "min_k:k=2"),
    ],
    "plan": [
        *("plan", "--suspect", str(SAMPLE), "--control", str(SAMPLE), "--output", "plan.json"),
        *("--question", "q", "--analyst", "a", "--control-rationale", "r", "--scorers", "min_k:k=2"),
    ],
    "benchmark": ["benchmark", "gpt2-wikipedia", "--output-dir", "bench", "--scorers", "min_k:k=2"],
    "benchmark --defense": [
        *("benchmark", "gpt2-wikipedia", "--output-dir", "bench", "--defense", "none"),
        *("--attacks", "loss", "min_k:k=2"),
    ],
}


def test_every_command_refuses_a_bad_hyperparameter_before_any_model_loads(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(list(COMMANDS.values()))],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    for command, result in zip(COMMANDS, json.loads(done.stdout), strict=True):
        name = command.split()[0]
        assert result == {
            "status": USER_ERROR,
            "stderr": f"llm-mia {name}: error: scorer 'min_k': k=2 is out of range; k must be a float in (0, 1] "
            "(default 0.2)\n",
            "torch": False,  # torch was never imported: no model was loaded, none trained
        }, command
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert seconds < 60, seconds  # six commands, no model load, no training (loose: the machine may be busy)


def test_the_console_command_refuses_in_one_line_with_status_2(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "llm_mia", "score", "--scorers", "gradnorm:p=3"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "llm-mia score: error: scorer 'gradnorm': p=3 is not allowed; p must be one of 1, 2, inf (default 2.0)"
    )
    assert time.monotonic() - started < 60


def test_the_python_api_refuses_a_bad_hyperparameter_before_loading(monkeypatch) -> None:
    import llm_mia
    import llm_mia.api

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the refusal")

    monkeypatch.setattr(llm_mia.api, "load_model", refuse)
    with pytest.raises(ParameterError, match=r"scorer 'neighbourhood': n=0 is out of range; n must be an integer >= 1"):
        llm_mia.score(["a text"], model="smollm2-135m", scorers=["loss", "neighbourhood:n=0"])


# ------------------------------------------------------------------------------------ internal errors


def test_an_internal_error_is_a_bug_not_bad_input(tmp_path: Path, capsys, monkeypatch, private_failure_logs) -> None:
    import llm_mia.workflows.score

    assert not issubclass(InternalError, LlmMiaError)  # code handling bad input never swallows a bug

    def broken(settings: object) -> None:
        raise InternalError("the batch planner gave one batch two prefixes")

    monkeypatch.setattr(llm_mia.workflows.score, "load_models", broken)
    assert main(["score", "--input", str(SAMPLE), "--no-cache"]) == INTERNAL_ERROR != USER_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith("llm-mia score: internal error: the batch planner gave one batch two prefixes (at ")
    assert "This is a bug; please report it with the log at " in err and "Traceback" not in err
    assert Path(err.rsplit("the log at ", 1)[1]).parent == private_failure_logs


def test_an_unplanned_conditioned_view_is_an_internal_error() -> None:
    """``compute_scores`` plans a prefix for every conditioned view it extracts; a caller that plans none is a bug
    in that caller, refused before the model (here a stand-in) is used."""
    from types import SimpleNamespace

    from llm_mia.backends.local import LOCAL_CAPABILITIES
    from llm_mia.engine.extraction_settings import ExtractionSettings
    from llm_mia.io.documents import Document
    from llm_mia.scoring.pipeline import extract_views

    with pytest.raises(InternalError, match="view 'target_recall' needs a conditioning prefix; none was planned"):
        extract_views(
            [Document(id="a", text="some text to read")],
            ["target_recall"],
            models={"target": SimpleNamespace(spec=SimpleNamespace(name="stand-in"), offers=LOCAL_CAPABILITIES)},
            settings=ExtractionSettings(progress=False),
        )
