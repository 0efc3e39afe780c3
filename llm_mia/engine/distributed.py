"""Multi-process scoring: one model copy per process, batches sharded, results merged through the cache.

Start any ``llm-mia`` command under a launcher (``accelerate launch -m llm_mia score ...`` or
``torchrun --nproc_per_node N -m llm_mia score ...``). Each process loads the model on its own device,
computes its share of the batches (``extract.Shard``), commits them to the shared stats cache and waits for
the others; the main process then writes the output. Per-document results do not depend on the number of
processes because batch composition does not.
"""

from __future__ import annotations

from llm_mia.backends.loading import launched_processes
from llm_mia.engine.extract import Shard


def current_shard(device: str) -> Shard | None:
    """This process's shard in a launched multi-process run, or None in an ordinary single-process run."""
    if launched_processes() <= 1:
        return None
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")
    return Shard(index=state.process_index, count=state.num_processes, wait_for_everyone=state.wait_for_everyone)


def is_main_process(shard: Shard | None) -> bool:
    return shard is None or shard.index == 0
