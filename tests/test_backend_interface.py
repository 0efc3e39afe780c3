"""One model-backend interface: outside ``llm_mia/backends/`` no code asks which kind of model it holds (a name's
``api:`` prefix, ``is_remote``, ``isinstance(..., RemoteModel)``); it asks what the model offers and calls the
``Model`` protocol. Both backends implement that protocol."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llm_mia.backends.loading import ModelSettings, capabilities_of
from llm_mia.backends.local import LoadedModel
from llm_mia.backends.protocol import Model, ModelCapabilities
from llm_mia.backends.remote.model import RemoteModel

PACKAGE = Path(__file__).resolve().parents[1] / "llm_mia"
BRANCH = re.compile(r"""is_remote\(|isinstance\([^)]*RemoteModel|startswith\(\s*["']api:["']""")


def backend_branches(root: Path) -> list[str]:
    """``path:line: code`` of every local-vs-API branch in the package outside ``backends/``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent)
        if relative.parts[1] == "backends":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if BRANCH.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_no_code_outside_the_backends_asks_which_backend_it_holds() -> None:
    assert backend_branches(PACKAGE) == [], "ask model.offers / capabilities_of(name) instead"


@pytest.mark.parametrize(
    "line",
    [
        "    if is_remote(spec.name):",
        "        if not isinstance(model, RemoteModel):",
        "    local = isinstance(models['target'], LoadedModel | RemoteModel)",
        '    remote = name.startswith("api:")',
        "    remote = name.startswith('api:')",
    ],
)
def test_the_check_finds_each_form_of_branch(tmp_path, line) -> None:
    """The check fires on each form, in any package module outside backends/, and never inside it."""
    package = tmp_path / "llm_mia"
    (package / "workflows").mkdir(parents=True)
    (package / "backends").mkdir()
    (package / "workflows" / "run.py").write_text(f"def run(spec, model, models, name):\n{line}\n")
    (package / "backends" / "loading.py").write_text(f"def run(spec, model, models, name):\n{line}\n")
    assert backend_branches(package) == [f"llm_mia/workflows/run.py:2: {line.strip()}"]


def test_both_backends_implement_the_protocol_and_say_what_they_offer(tiny_loaded) -> None:
    loaded = tiny_loaded["gpt2"]
    assert isinstance(loaded, Model) and isinstance(loaded, LoadedModel)
    for method in ("token_stats", "describe"):
        assert callable(getattr(RemoteModel, method))
    assert isinstance(RemoteModel.offers, property) and isinstance(RemoteModel.tokenizer_id, property)
    assert loaded.offers == capabilities_of("smollm2-135m")
    assert loaded.offers.weights and loaded.offers.token_arrays is None
    api = capabilities_of("api:some-model")
    assert isinstance(api, ModelCapabilities)
    assert (api.weights, api.tokenizer, api.files, api.processes, api.endpoint) == (False, False, False, False, True)
    assert api.token_arrays == ("logprob",)


def test_settings_refuse_what_a_model_behind_an_api_cannot_do_before_anything_loads() -> None:
    from llm_mia.backends.remote.client import ApiSettings
    from llm_mia.errors import LlmMiaError
    from llm_mia.scoring.settings import ScoringSettings

    api = ApiSettings(base_url="http://127.0.0.1:9/v1")
    remote = ModelSettings(model="api:m", api=api)
    assert remote.remote_names == ["api:m"] and not remote.offers().tokenizer
    with pytest.raises(LlmMiaError, match="min_k_plus_plus needs the per-token"):
        ScoringSettings(models=remote, scorers=("min_k_plus_plus",))
    with pytest.raises(LlmMiaError, match="--output-defense applies to a local model's logits"):
        ModelSettings(model="api:m", api=api, output_defense="temperature:t=2")
