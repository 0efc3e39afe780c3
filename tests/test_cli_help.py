"""Every subcommand's --help, rendered: headings, help strings and examples read as written."""

from __future__ import annotations

import argparse
import re

import pytest

from llm_mia.cli import SUBCOMMANDS, build_parser, main


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


NAMES = [name for name, _, _ in SUBCOMMANDS]
# a help string or example comment that stops on one of these words was cut off
DANGLING = re.compile(r"\b(a|an|the|and|or|of|is|are|than|with)$", re.I)


@pytest.mark.parametrize("name", NAMES)
def test_help_renders_with_one_heading_per_group_and_whole_sentences(name: str) -> None:
    parser = subparsers()[name]
    text = parser.format_help()
    # one heading per subject: "synthetic control (...)" and "synthetic control" are the same heading twice
    stems = [group.title.split(" (")[0].lower() for group in parser._action_groups if group._group_actions]
    assert len(stems) == len(set(stems)), f"{name}: argument groups share a heading: {stems}"
    for action in parser._actions:
        if not action.help or action.help == argparse.SUPPRESS:
            continue
        help_text = action.help.strip()
        assert help_text.count("(") == help_text.count(")"), f"{name} {action.option_strings}: {help_text!r}"
        assert not help_text.endswith((",", ";", ":", "(")), f"{name} {action.option_strings}: {help_text!r}"
        assert not DANGLING.search(help_text), f"{name} {action.option_strings} is cut off: {help_text!r}"
    if "examples:" in (parser.description or ""):
        assert parser.formatter_class is argparse.RawDescriptionHelpFormatter, f"{name}: examples would be reflowed"
    assert text  # renders at all


@pytest.mark.parametrize("name", NAMES)
def test_examples_keep_their_line_breaks_and_their_comments_end(name: str) -> None:
    description = subparsers()[name].description or ""
    text = subparsers()[name].format_help()
    for line in description.splitlines():
        if not line.startswith("  llm-mia ") and not line.startswith("      --"):
            continue
        assert line in text, f"{name}: example line not rendered as written: {line!r}"
        # a continuation backslash that Python swallowed joins two example lines into one
        assert not re.search(r"\S {3,}--\w", line.split("#")[0]), f"{name}: two example lines joined: {line!r}"
        assert len(line) <= 120, f"{name}: example line too long (joined?): {line!r}"
        if "#" in line:
            comment = line.split("#", 1)[1].strip()
            assert not DANGLING.search(comment), f"{name}: example comment is cut off: {comment!r}"


def test_the_top_level_help_names_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "70 a bug in llm-mia" in out and "2 bad input" in out


def test_every_subcommand_takes_debug_after_its_name() -> None:
    assert build_parser().parse_args(["list", "--debug"]).debug is True
    assert build_parser().parse_args(["--debug", "list"]).debug is True
    assert build_parser().parse_args(["list"]).debug is False


# ------------------------------------------------------------------------------------ deprecated names


def test_evidence_run_output_still_works_as_a_deprecated_alias(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["evidence", "run", "plan.json", "--output", "bundle"])
    assert args.output_dir == "bundle"
    assert "--output is deprecated here; use --output-dir" in capsys.readouterr().err
    assert build_parser().parse_args(["evidence", "run", "plan.json", "--output-dir", "b"]).output_dir == "b"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evidence", "run", "plan.json"])  # one of the two is required


# ------------------------------------------------------------------------------------ shared flags


def _reference_action(name: str) -> argparse.Action:
    """The action a shared flag makes when added to a parser of its own."""
    from llm_mia.cli.flags import SHARED_FLAGS, add_flags

    parser = argparse.ArgumentParser()
    add_flags(parser, name)
    options = SHARED_FLAGS[name][0]
    return next(a for a in parser._actions if a.option_strings == list(options))


def _commands_with(option: str) -> dict[str, argparse.Action]:
    return {
        command: action
        for command, parser in subparsers().items()
        for action in parser._actions
        if option in action.option_strings
    }


SHARED = ["threads", "device", "dtype", "batch_size", "no_progress", "cache_dir", "no_cache"]


@pytest.mark.parametrize("name", SHARED)
def test_a_shared_flag_has_one_type_default_and_help_in_every_subcommand(name: str) -> None:
    reference = _reference_action(name)
    commands = _commands_with(reference.option_strings[0])
    assert len(commands) >= 2, f"{name} is shared by {sorted(commands)} only"
    for command, action in commands.items():
        for attribute in ("option_strings", "type", "default", "help", "choices", "nargs", "const", "required"):
            assert getattr(action, attribute) == getattr(reference, attribute), f"{command} {name}: {attribute}"
        assert type(action) is type(reference), f"{command} {name}: {type(action).__name__}"


def test_every_command_with_a_model_or_training_defaults_to_the_device_auto_picks() -> None:
    commands = _commands_with("--device")
    assert {"score", "benchmark", "demo", "shadow", "synthesize", "check-backend", "extract-test"} <= set(commands)
    assert {action.default for action in commands.values()} == {"auto"}


@pytest.mark.parametrize("argv", [["score"], ["benchmark", "gpt2-wikipedia"], ["shadow", "train", "--output", "d"]])
def test_threads_parse_to_the_same_values_in_every_command(argv: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args([*argv, "--threads", "3"]).threads == 3
    assert parser.parse_args([*argv, "--threads", "auto"]).threads == "auto"
    assert parser.parse_args(argv).threads == "auto"


@pytest.mark.parametrize("value", ["x", "0", "-2"])
def test_a_bad_thread_or_batch_count_is_a_usage_error_before_anything_runs(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for flag in ("--threads", "--batch-size"):
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args(["score", flag, value])
        assert exit_info.value.code == 2
        assert f"argument {flag}" in capsys.readouterr().err
