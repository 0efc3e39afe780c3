"""No traceback for a condition the user caused: broken models and inputs, destinations that cannot be written,
full disks; bugs get their own exit status and a log to report; outputs get the mode the umask allows."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

import llm_mia.io.outputs
from llm_mia.cli import INTERNAL_ERROR, USER_ERROR, main
from llm_mia.errors import OutputError
from llm_mia.io.outputs import atomic_write, check_writable


@pytest.fixture()
def texts(tmp_path: Path) -> Path:
    path = tmp_path / "texts.jsonl"
    rows = [{"id": "a", "text": "the river carried cold water past old mills"}, {"id": "b", "text": "quiet fields"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The console's error: exactly one line, no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture()
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a model is loaded: the refusal must come first."""
    import llm_mia.workflows.score

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the refusal")

    monkeypatch.setattr(llm_mia.workflows.score, "load_models", refuse)


# ------------------------------------------------------------------------------------ models and inputs


def broken_models(root: Path, tiny: Path) -> dict[str, tuple[Path, str]]:
    """(model path, words the error must hold) for each way a model can be broken."""
    bad_config = root / "bad-config"
    shutil.copytree(tiny, bad_config)
    (bad_config / "config.json").write_text('{"model_type": "gpt2",')
    no_weights = root / "no-weights"
    shutil.copytree(tiny, no_weights)
    (no_weights / "model.safetensors").unlink()
    bad_weights = root / "bad-weights"
    shutil.copytree(tiny, bad_weights)
    (bad_weights / "model.safetensors").write_bytes(b"not safetensors at all")
    not_gguf = root / "model.gguf"
    not_gguf.write_text("<html>a login page saved as a model</html>")
    return {
        "config.json that is not JSON": (bad_config, "config.json is not valid JSON"),
        "config without weights": (no_weights, "no weights"),
        "weights that are not safetensors": (bad_weights, "cannot load model"),
        "a .gguf file that is not GGUF": (not_gguf, "is not a GGUF file"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "config.json that is not JSON",
        "config without weights",
        "weights that are not safetensors",
        "a .gguf file that is not GGUF",
    ],
)
def test_a_broken_model_fails_in_one_line_naming_it(case, tiny_model_dirs, texts, tmp_path, capsys) -> None:
    model, words = broken_models(tmp_path, tiny_model_dirs["gpt2"])[case]
    assert main(["score", "--model", str(model), "--input", str(texts), "--no-cache", "--no-progress"]) == USER_ERROR
    line = one_line_error(capsys)
    assert words in line and str(model) in line


def test_a_corrupt_parquet_input_is_refused_naming_the_file(texts, tmp_path, capsys, no_model_loads) -> None:
    corrupt = tmp_path / "texts.parquet"
    corrupt.write_bytes(b"PAR1 this is not a parquet file")
    assert main(["score", "--input", str(corrupt), "--no-cache"]) == USER_ERROR
    line = one_line_error(capsys)
    assert f"{corrupt}: not a readable Parquet file" in line


def test_an_unterminated_csv_quote_is_refused_with_the_file_and_line(tmp_path, capsys, no_model_loads) -> None:
    path = tmp_path / "texts.csv"
    path.write_text('id,text\n1,"a fine first row"\n2,"a quote never closed\n3,third\n4,fourth\n')
    assert main(["score", "--input", str(path), "--no-cache"]) == USER_ERROR
    line = one_line_error(capsys)
    assert f"{path}:3: a quoted field opened in the row starting on this line is never closed" in line


def test_a_quoted_field_over_several_lines_is_still_read(tmp_path) -> None:
    from llm_mia.io.documents import read_records

    path = tmp_path / "texts.csv"
    path.write_text('id,text\n1,"two\nlines"\n2,"a ""quoted"" word"\n')
    assert [row for _, row in read_records(path)] == [
        {"id": "1", "text": "two\nlines"},
        {"id": "2", "text": 'a "quoted" word'},
    ]


# ------------------------------------------------------------------------------------ destinations


def refuse_writes_under(monkeypatch: pytest.MonkeyPatch, directory: Path, code: int) -> None:
    """Make creating files under ``directory`` fail as a read-only file system or a missing permission does
    (chmod cannot show it to a test running as root)."""
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if Path(path).absolute().parent == directory.absolute() and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_an_output_that_cannot_be_written_is_refused_before_the_model_loads(
    code, texts, tmp_path, capsys, monkeypatch, no_model_loads
) -> None:
    shut = tmp_path / "shut"
    shut.mkdir()
    refuse_writes_under(monkeypatch, shut, code)
    output = shut / "scores.jsonl"
    assert main(["score", "--input", str(texts), "--output", str(output), "--no-cache"]) == USER_ERROR
    line = one_line_error(capsys)
    assert f"cannot write the directory of --output {output} ({shut})" in line and "choose another --output" in line


def test_a_report_directory_on_a_full_disk_is_refused_before_any_work(tmp_path, capsys, monkeypatch) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    scores = tmp_path / "scores.jsonl"
    scores.write_text(json.dumps({"id": "a", "label": 1, "loss": 1.0}) + "\n")
    code = main(["evaluate", "--scores", str(scores), "--output-dir", str(tmp_path / "eval")])
    assert code == USER_ERROR
    line = one_line_error(capsys)
    assert "no space is left on that disk; free space there, or choose another --output-dir" in line
    assert not list(tmp_path.glob(".llm-mia-write-probe-*"))


def test_a_stats_cache_that_cannot_be_written_is_refused_before_the_model_loads(
    texts, tmp_path, capsys, monkeypatch, no_model_loads
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    refuse_writes_under(monkeypatch, cache, errno.EROFS)
    assert main(["score", "--input", str(texts), "--cache-dir", str(cache)]) == USER_ERROR
    line = one_line_error(capsys)
    assert "cannot write the stats cache" in line and "pass --cache-dir on another disk, or --no-cache" in line


def test_a_disk_that_fills_up_during_the_run_ends_in_one_line_and_leaves_nothing(
    tiny_model_dirs, texts, tmp_path, capsys, monkeypatch
) -> None:
    """The probe passes; the disk is full when the scores are written (the temporary file's descriptor is
    pointed at /dev/full, whose every write fails with ENOSPC)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    real = llm_mia.io.outputs._create_temporary

    def on_a_full_disk(path: Path) -> tuple[int, Path]:
        handle, temporary = real(path)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, handle)
        os.close(full)
        return handle, temporary

    monkeypatch.setattr(llm_mia.io.outputs, "_create_temporary", on_a_full_disk)
    output = tmp_path / "out" / "scores.jsonl"
    output.parent.mkdir()
    model = str(tiny_model_dirs["gpt2"])
    args = ["score", "--model", model, "--input", str(texts), "--output", str(output), "--no-progress"]
    assert main([*args, "--cache-dir", str(tmp_path / "cache")]) == USER_ERROR
    line = one_line_error(capsys)
    assert f"cannot write the output ({output}): no space is left on that disk" in line
    assert "the same command run again writes them without computing them again" in line  # the stats cache has them
    assert list(output.parent.iterdir()) == []  # no half file, no temporary file


def test_a_full_stats_cache_database_ends_in_one_line(tiny_model_dirs, texts, tmp_path, capsys, monkeypatch) -> None:
    """SQLite's own limit on the database's pages gives the same error as a full disk (SQLITE_FULL)."""
    from llm_mia.engine.stats_cache import StatsCache

    real = StatsCache._connect

    def capped(self: StatsCache):
        connection = real(self)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")
        return connection

    monkeypatch.setattr(StatsCache, "_connect", capped)
    cache = tmp_path / "cache"
    model = str(tiny_model_dirs["gpt2"])
    args = ["score", "--model", model, "--input", str(texts), "--cache-dir", str(cache), "--no-progress"]
    assert main(args) == USER_ERROR
    line = one_line_error(capsys)
    assert f"cannot write the stats cache ({cache / 'tokenstats.sqlite'}): no space is left on that disk" in line
    assert "--no-cache" in line
    assert not list(cache.glob("*.corrupt-*"))  # a full disk is not a damaged database: nothing moved aside


def test_check_writable_names_the_path_reason_and_fix(tmp_path, monkeypatch) -> None:
    assert check_writable(tmp_path, what="the place", fix="choose another") == tmp_path
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    refuse_writes_under(monkeypatch, tmp_path, errno.EACCES)
    with pytest.raises(OutputError, match=r"cannot write the place \(.*\): you have no permission to write there"):
        check_writable(tmp_path, what="the place", fix="choose another")


# ------------------------------------------------------------------------------------ modes


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_mode_the_umask_allows(umask: int, mode: int, tmp_path: Path) -> None:
    previous = os.umask(umask)
    try:
        path = atomic_write(tmp_path / "out.json", lambda stream: stream.write("{}"))
        replaced = atomic_write(path, lambda stream: stream.write("[]"))  # --overwrite: same rule
    finally:
        os.umask(previous)
    assert (path.stat().st_mode & 0o777) == mode and replaced.read_text() == "[]"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_score_file_and_its_run_record_are_readable_by_the_group(tiny_model_dirs, texts, tmp_path) -> None:
    output = tmp_path / "scores.jsonl"
    previous = os.umask(0o027)
    try:
        args = ["score", "--model", str(tiny_model_dirs["gpt2"]), "--input", str(texts), "--output", str(output)]
        assert main([*args, "--no-progress", "--no-cache"]) == 0
    finally:
        os.umask(previous)
    for path in (output, Path(f"{output}.run.json")):
        assert (path.stat().st_mode & 0o777) == 0o640, path


# ------------------------------------------------------------------------------------ bugs and logs


def test_a_bug_gets_its_own_exit_status_and_a_log_to_report(texts, capsys, monkeypatch, private_failure_logs) -> None:
    import llm_mia.workflows.score

    def broken(*args: object, **kwargs: object) -> None:
        return {}["a key that is not there"]

    monkeypatch.setattr(llm_mia.workflows.score, "load_models", broken)
    assert main(["score", "--input", str(texts), "--no-cache"]) == INTERNAL_ERROR
    line = one_line_error(capsys)
    assert line.startswith("llm-mia score: internal error: KeyError: 'a key that is not there' (at ")
    assert "This is a bug; please report it with the log at " in line
    log = Path(line.rsplit("the log at ", 1)[1])
    assert log.parent == private_failure_logs
    text = log.read_text()
    assert "Traceback" in text and "a key that is not there" in text and "command: llm-mia score --input" in text


def test_debug_prints_the_traceback_too(texts, capsys, monkeypatch) -> None:
    import llm_mia.workflows.score

    monkeypatch.setattr(llm_mia.workflows.score, "load_models", lambda settings: 1 / 0)
    assert main(["score", "--input", str(texts), "--no-cache", "--debug"]) == INTERNAL_ERROR
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "This is a bug" in err


def test_the_log_falls_back_to_the_temporary_directory(texts, capsys, monkeypatch, tmp_path) -> None:
    import tempfile

    import llm_mia.cli.failures
    import llm_mia.workflows.score

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setattr(llm_mia.cli.failures, "log_directory", lambda: blocked / "logs")  # cannot be created
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(llm_mia.workflows.score, "load_models", lambda settings: 1 / 0)
    assert main(["score", "--input", str(texts), "--no-cache"]) == INTERNAL_ERROR
    log = Path(one_line_error(capsys).rsplit("the log at ", 1)[1])
    assert log.parent == tmp_path and "ZeroDivisionError" in log.read_text()


def test_logging_is_left_as_it_was_found() -> None:
    import logging

    urllib3 = logging.getLogger("urllib3")
    before = (urllib3.propagate, urllib3.level, list(urllib3.handlers), list(logging.getLogger().handlers))
    assert main(["list"]) == 0
    after = (urllib3.propagate, urllib3.level, list(urllib3.handlers))
    assert after == before[:3]
    assert not [h for h in logging.getLogger().handlers if h not in before[3] and type(h).__name__ == "_Buffer"]


# ------------------------------------------------------------------------------------ progress bars


def test_no_progress_silences_the_loading_bar_and_restores_it(tiny_model_dirs, texts, capsys) -> None:
    import huggingface_hub.utils
    import transformers.utils.logging

    args = ["score", "--model", str(tiny_model_dirs["gpt2"]), "--input", str(texts), "--no-cache", "--scorers", "loss"]
    assert main(args) == 0
    assert "Loading weights" in capsys.readouterr().err  # the bar this test looks for
    assert main([*args, "--no-progress"]) == 0
    assert "Loading weights" not in capsys.readouterr().err
    assert transformers.utils.logging.is_progress_bar_enabled()  # later calls in this process draw it again
    assert not huggingface_hub.utils.are_progress_bars_disabled()


def test_no_progress_silences_the_gguf_conversion_bar_and_restores_it(capsys) -> None:
    """transformers' GGUF reader draws its bar with plain tqdm, outside the switch the loading bar follows: under
    ``--no-progress`` (library_progress_bars off) the conversion draws it disabled, and only there."""
    import transformers.modeling_gguf_pytorch_utils as reader

    from llm_mia.backends.local import _gguf_bar_follows_hub, library_progress_bars

    def draw() -> str:
        for _ in reader.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
            pass
        return capsys.readouterr().err

    with _gguf_bar_follows_hub():
        assert "Converting and de-quantizing" in draw()  # progress on: the bar this test looks for
    with library_progress_bars(False), _gguf_bar_follows_hub():
        assert draw() == ""
    assert "Converting and de-quantizing" in draw()  # put back for later calls in the process
