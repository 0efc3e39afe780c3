"""The extraction engine: the only code that scores with a model. Texts in, one TokenStats per text out (and, for
multiple-choice prompts, the log-probs of candidate answer tokens: ``next_token_logprobs``).

Pipeline for one (model, text variant):

1. Tokenize each text without special tokens; put the tokenizer's own prefix (BOS) in front if it adds one.
2. Plan windows (``plan_windows``): a text that fits the window is one segment; a longer one becomes
   overlapping windows with an explicit stride, each content token scored exactly once.
3. Sort all segments by length (longest first, so an out-of-memory error happens at once), batch them,
   right-pad, and run the model's base network once per batch.
4. For each scored position only, project the hidden state to the vocabulary in chunks of rows and reduce
   it in float32 to O(1) numbers per position (log-prob of the actual token, mean and std of log p, rank,
   top-1 log-prob). Full-vocabulary tensors never leave the device and never exist for more than one chunk.
5. Stitch each document's segments back together in text order and restore the input order.

With a stats cache, every batch is committed as it finishes: the documents it completes, and the windows it
computed of documents still unfinished (a book given as one file is thousands of windows), so a run killed
anywhere resumes at its last finished batch, even inside one document, with the bits of an uninterrupted run.

The causal shift happens in exactly one place, ``_scored_rows``: the token at position j is predicted by the
hidden state at position j - 1. Worked example, GPT-2 style (no BOS), text tokens [a, b, c], batch padded to 5:

    position        0   1   2   3    4
    input_ids       a   b   c   pad  pad
    attention_mask  1   1   1   0    0
    score_from = 1: targets at positions 1..2 = [b, c], predicted from hidden states at positions 0..1.

With a BOS-adding tokenizer the input is [BOS, a, b, c] and score_from = 1 scores [a, b, c]. Padding is
never detected by comparing ids with ``pad_token_id`` (pad is often EOS, and real EOS tokens would be lost):
each segment's own length decides which positions are real.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from llm_mia.backends.local import LoadedModel
from llm_mia.backends.precision import activation_bytes
from llm_mia.backends.token_stats import TextFacts, TokenStats, zlib_length
from llm_mia.defenses.output import row_seeds
from llm_mia.engine.extraction_settings import ExtractionSettings
from llm_mia.engine.generation import sample_continuations
from llm_mia.engine.output_defense import reduce_defended
from llm_mia.engine.reductions import reduce_vocab
from llm_mia.engine.stats_cache import StatsCache
from llm_mia.engine.stats_cache import entry_key as cache_entry_key
from llm_mia.engine.stats_cache import settings_key as cache_settings_key
from llm_mia.engine.stats_cache import window_key as cache_window_key
from llm_mia.engine.throughput import duration as throughput_duration
from llm_mia.engine.throughput import remember as remember_throughput
from llm_mia.engine.throughput import remembered as remembered_throughput
from llm_mia.errors import InternalError, LlmMiaError
from llm_mia.io.identity import sha256_text

logger = logging.getLogger(__name__)

STATUS_EMPTY = "empty or whitespace-only text"
STATUS_TOO_SHORT = "no scorable tokens (one token without BOS: nothing predicts it)"
STATUS_NONFINITE = "non-finite logits (NaN/inf): try float32"
STATUS_OUT_OF_MEMORY = "out of memory even as a batch of one: rerun with a smaller --window"

# Vocabulary work is chunked over scored rows, at two sizes. The head's matmul runs on up to HEAD_CHUNK_BYTES of
# logits at once, so its (V, H) weight matrix is read once per chunk, as in a plain forward pass. The float32
# reductions then run on sub-chunks of REDUCE_CHUNK_BYTES: on CPU they are memory-bound, and sub-chunks that
# stay in cache are several times faster than whole chunks; a GPU prefers few, large kernels. Peak extra
# memory is bounded by these budgets whatever the vocabulary size (Gemma's 262k included).
HEAD_CHUNK_BYTES = 256 * 2**20
REDUCE_CHUNK_BYTES = {"cpu": 12 * 2**20, "cuda": 1024 * 2**20}


def vocab_chunk_rows(vocab_size: int, device: str) -> tuple[int, int]:
    """(rows per head matmul, rows per float32 reduction) for this vocabulary size and device."""
    head_rows = max(1, HEAD_CHUNK_BYTES // (vocab_size * 4))
    reduce_budget = REDUCE_CHUNK_BYTES["cuda" if device.startswith("cuda") else "cpu"]
    return head_rows, max(1, min(head_rows, reduce_budget // (vocab_size * 4)))


@dataclass(frozen=True)
class Segment:
    """One model call's worth of one document: ``input_ids`` = prefix + a slice of content tokens.

    Tokens at positions ``score_from .. len(input_ids) - 1`` are scored (each predicted from the position
    before it).
    """

    document: int  # index of the text in the input
    part: int  # index of this window within the document, in text order
    input_ids: tuple[int, ...]
    score_from: int
    condition: int = 0  # leading tokens that are a shared conditioning prefix (encoded once, see extract)


def plan_windows(
    content_length: int, prefix_length: int, *, window: int, stride: int | None
) -> list[tuple[int, int, int]]:
    """Split ``content_length`` tokens into windows; returns (start, score_start, end) in content coordinates.

    Each window holds content[start:end] after the prefix and scores content[score_start:end]. Together the
    scored ranges cover every scorable token exactly once: all of them with a prefix (BOS), all but the
    first without. Text that fits gives a single window. Raises if the window leaves no room for context.
    """
    capacity = window - prefix_length  # content tokens per window
    if capacity < 2:
        raise LlmMiaError(f"window {window} leaves {capacity} content token(s) after the prefix; use >= 2")
    first_scored = 0 if prefix_length else 1
    if content_length <= capacity:
        return [(0, first_scored, content_length)]
    stride = capacity // 2 if stride is None else stride
    if stride > capacity - 1:
        raise LlmMiaError(
            f"stride {stride} leaves no context in a window of {capacity} content tokens; use <= {capacity - 1}"
        )
    windows = [(0, first_scored, capacity)]
    end = capacity
    while end < content_length:
        new_end = min(end + stride, content_length)
        windows.append((new_end - capacity, end, new_end))
        end = new_end
    return windows


@dataclass
class TokenizedText:
    content_ids: list[int]
    first_token_bytes: int  # UTF-8 bytes of the first content token's span (unscored without BOS)


TOKENIZE_CHUNK = 512  # texts per tokenizer call: its encodings (offsets, token strings) cost ~60 KB per text


def tokenize_texts(texts: Sequence[str], loaded: LoadedModel) -> list[TokenizedText]:
    """Content ids and first-token byte length of each text, tokenized ``TOKENIZE_CHUNK`` texts at a time (one
    call over tens of thousands of texts, e.g. every neighbour of every document, held gigabytes at once)."""
    result: list[TokenizedText] = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        result.extend(_tokenize_chunk(texts[start : start + TOKENIZE_CHUNK], loaded))
    return result


def _tokenize_chunk(texts: Sequence[str], loaded: LoadedModel) -> list[TokenizedText]:
    tokenizer = loaded.tokenizer
    if not texts:
        return []
    fast = bool(getattr(tokenizer, "is_fast", False))
    # split_special_tokens: a text that contains "<|endoftext|>" is scored as those characters, not as the
    # special token. verbose=False: long texts are windowed below, the "longer than the maximum" warning is moot.
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        split_special_tokens=True,
        return_offsets_mapping=fast,
        verbose=False,
    )
    result = []
    for index, text in enumerate(texts):
        ids = list(encoded["input_ids"][index])
        if not ids:
            result.append(TokenizedText(ids, 0))
            continue
        if fast and len(ids) > 1:
            first_bytes = len(text[: encoded["offset_mapping"][index][1][0]].encode("utf-8"))
        else:
            first_bytes = len(tokenizer.decode(ids[:1]).encode("utf-8"))
        result.append(TokenizedText(ids, first_bytes))
    return result


def _softcap(logits: torch.Tensor, cap: float | None) -> torch.Tensor:
    """Final logit soft-capping (Gemma 2 style): cap * tanh(logits / cap); identity when the model has none."""
    return torch.tanh(logits / cap) * cap if cap else logits


def _scored_rows(segments: Sequence[Segment], device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(batch index, predicting position, target id) for every scored token: the causal shift, done once."""
    batch_index: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    for row, segment in enumerate(segments):
        predicting = range(segment.score_from - 1, len(segment.input_ids) - 1)
        batch_index.extend([row] * len(predicting))
        positions.extend(predicting)
        targets.extend(segment.input_ids[segment.score_from :])
    as_tensor = lambda values: torch.tensor(values, dtype=torch.long, device=device)  # noqa: E731
    return as_tensor(batch_index), as_tensor(positions), as_tensor(targets)


@dataclass
class ExtractionContext:
    """What the extractions of one run share and report, carried by the run instead of kept in the process.

    ``batch_tokens``: per model name, the token budget ``--batch-size auto`` chose (for the run record).
    ``encoded_prefix``: the conditioning prefix last encoded (ReCaLL): the model it was encoded by, its token ids,
    its key/value cache and its last hidden state; only the most recent one is kept, to bound memory, and it is
    reused by every batch and block of the run that reads texts after the same prefix.
    """

    batch_tokens: dict[str, int] = field(default_factory=dict)
    encoded_prefix: tuple[Any, tuple[int, ...], Any, torch.Tensor] | None = None

    def encoded_condition(self, loaded: LoadedModel, ids: tuple[int, ...]) -> tuple[Any, torch.Tensor]:
        """The key/value cache and last hidden state of a conditioning prefix: computed once per (model, prefix).
        Called inside the batch's inference mode."""
        held = self.encoded_prefix
        if held is None or held[0] is not loaded.model or held[1] != ids:
            self.encoded_prefix = None  # free the previous prefix's cache before computing the next
            out = loaded.model.base_model(input_ids=torch.tensor([ids], device=loaded.device), use_cache=True)
            held = self.encoded_prefix = (loaded.model, ids, out["cache"], out.last_hidden_state[0, -1])
        return held[2], held[3]

    def next_token_logprobs(
        self, texts: Sequence[str], model: LoadedModel, candidates: Sequence[int], *, batch_size: int = 8
    ) -> np.ndarray:
        """:func:`next_token_logprobs` (``llm_mia.backends.protocol.Engine``, which a local model's
        ``next_token_logprobs`` calls)."""
        return next_token_logprobs(texts, model, candidates, batch_size=batch_size)

    def sample(
        self, prompt: str, model: LoadedModel, *, samples: int, max_new_tokens: int, seed: int, temperature: float = 1.0
    ) -> list[str]:
        """:func:`llm_mia.engine.generation.sample_continuations` with its defaults otherwise
        (``llm_mia.backends.protocol.Engine``, which a local model's ``sample`` calls)."""
        return sample_continuations(
            prompt, model, samples=samples, max_new_tokens=max_new_tokens, seed=seed, temperature=temperature
        )

    def token_stats(
        self,
        texts: Sequence[str],
        model: LoadedModel,
        settings: ExtractionSettings,
        *,
        cache: StatsCache | None = None,
        shard: Shard | None = None,
        description: str = "scoring",
        observer: Callable[[dict[str, Any]], None] | None = None,
        condition: str = "",
    ) -> list[TokenStats]:
        """:func:`extract` in this run (``llm_mia.backends.protocol.Engine``, which a local model's
        ``token_stats`` calls): ``condition`` is a prefix text (tokenized by :func:`condition_ids`), and
        ``observer`` hears one dict per event: ``event``, the ``documents`` (indexes), their ``windows`` and
        ``tokens``."""
        ids = condition_ids(model, condition) if condition else ()
        if ids:
            description += f", after a {len(ids)}-token prefix"
        heard = None
        if observer is not None:

            def heard(event: str, segments: list[tuple[int, int, int]]) -> None:
                observer(
                    {
                        "event": event,
                        "documents": [doc for doc, _, _ in segments],
                        "windows": [part for _, part, _ in segments],
                        "tokens": [tokens for _, _, tokens in segments],
                    }
                )

        return extract(
            texts,
            model,
            settings,
            cache=cache,
            shard=shard,
            description=description,
            observer=heard,
            condition=ids,
            context=self,
        )


@torch.inference_mode()
def _run_batch(
    loaded: LoadedModel, segments: Sequence[Segment], context: ExtractionContext | None = None
) -> dict[str, np.ndarray]:
    """One forward pass over right-padded segments; returns the reductions for all scored rows, flattened.

    Segments with a conditioning prefix (``Segment.condition`` = C > 0, the same C tokens at the start of every
    segment) run only their tokens after it: the prefix's key/value cache, encoded once, is copied and repeated
    over the batch, and the position predicting the first token after the prefix reads the prefix's last hidden
    state. ``context`` holds the encoded prefix for the run (a fresh one encodes it for this batch alone).
    """
    device = loaded.device
    condition = segments[0].condition
    if any(s.condition != condition or s.input_ids[:condition] != segments[0].input_ids[:condition] for s in segments):
        raise InternalError("one batch mixes conditioning prefixes")  # planned per view: cannot happen
    longest = max(len(s.input_ids) for s in segments) - condition
    input_ids = torch.zeros((len(segments), longest), dtype=torch.long)  # pad id is irrelevant: masked
    attention_mask = torch.zeros((len(segments), condition + longest), dtype=torch.long)
    attention_mask[:, :condition] = 1
    for row, segment in enumerate(segments):
        own = segment.input_ids[condition:]
        input_ids[row, : len(own)] = torch.tensor(own)
        attention_mask[row, condition : condition + len(own)] = 1
    base = loaded.model.base_model
    batch_index, positions, targets = _scored_rows(segments, device)
    defense, seeds = loaded.output_defense, None
    if defense is not None and defense.random:  # keyed by content and position, never by the batch
        seeds = row_seeds(defense.get("seed"), segments, batch_index.tolist(), positions.tolist())
    if condition:
        import copy

        context = context if context is not None else ExtractionContext()
        encoded, last_hidden = context.encoded_condition(loaded, tuple(segments[0].input_ids[:condition]))
        past = copy.deepcopy(encoded)
        past.batch_repeat_interleave(len(segments))
        position_ids = torch.arange(condition, condition + longest, device=device).expand(len(segments), -1)
        hidden = base(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            cache=past,
            position_ids=position_ids,
            use_cache=True,
        ).last_hidden_state
        # position condition - 1 (the prefix's last) predicts the first token after it
        hidden = torch.cat([last_hidden.expand(len(segments), 1, -1), hidden], dim=1)
        positions = positions - (condition - 1)
    else:
        hidden = base(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).last_hidden_state
    # a model spread over devices (--device-map auto) ends on another device than it starts: index where the
    # hidden states are, and reduce where the output head computes (the logits' device)
    at = hidden.device
    rows_hidden = hidden[batch_index.to(at), positions.to(at)]  # (N, H): positions that predict a scored token
    head = loaded.model.get_output_embeddings()
    cap = getattr(loaded.model.config, "final_logit_softcapping", None)
    head_rows, reduce_rows = vocab_chunk_rows(head.weight.shape[0], str(at))
    pieces: dict[str, list[torch.Tensor]] = {}
    for start in range(0, rows_hidden.shape[0], head_rows):
        logits = head(rows_hidden[start : start + head_rows])  # (rows, V) in the model's dtype
        for sub in range(0, logits.shape[0], reduce_rows):
            chunk = _softcap(logits[sub : sub + reduce_rows].float(), cap)  # float32 from here on
            first = start + sub
            chunk_targets = targets[first : first + chunk.shape[0]].to(chunk.device)
            if defense is None:
                reduced = reduce_vocab(chunk, chunk_targets)
            else:  # what a defended deployment returns, before any reduction
                reduced = reduce_defended(
                    defense, chunk, chunk_targets, seeds and seeds[first : first + chunk.shape[0]]
                )
            for name, values in reduced.items():
                pieces.setdefault(name, []).append(values)
    out = {name: torch.cat(values).cpu().numpy() for name, values in pieces.items()}
    out["token_ids"] = targets.cpu().numpy()
    return out


@torch.inference_mode()
def next_token_logprobs(
    texts: Sequence[str], loaded: LoadedModel, candidates: Sequence[int], *, batch_size: int = 8
) -> np.ndarray:
    """log p(c | text) for each candidate token id c at the position after each whole text: (texts, candidates).

    For multiple-choice prompts (DE-COP): the text is tokenized as the engine does (BOS prefix if the tokenizer
    adds one, special-token strings kept as text), right-padded in batches of ``batch_size`` planned from the
    texts alone in input order, and only the last real position of each row is projected to the vocabulary;
    log-softmax in float32 over the full vocabulary. A text longer than the context is refused (an answer needs
    the whole question).
    """
    prefix = list(loaded.prefix_ids)
    rows = [prefix + t.content_ids for t in tokenize_texts(texts, loaded)]
    for index, ids in enumerate(rows):
        if len(ids) > loaded.context_length:
            raise LlmMiaError(
                f"prompt {index} has {len(ids)} tokens, more than the {loaded.context_length}-token context"
            )
        if not ids:
            raise LlmMiaError(f"prompt {index} is empty")
    if loaded.output_defense is not None:
        raise LlmMiaError(
            f"multiple-choice answers under the output defense {loaded.output_defense.spec} are not supported: "
            "score them on the undefended model"
        )
    wanted = torch.tensor(list(candidates), dtype=torch.long, device=loaded.device)
    head = loaded.model.get_output_embeddings()
    cap = getattr(loaded.model.config, "final_logit_softcapping", None)
    out = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        longest = max(len(ids) for ids in batch)
        input_ids = torch.zeros((len(batch), longest), dtype=torch.long)
        attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        hidden = loaded.model.base_model(
            input_ids=input_ids.to(loaded.device), attention_mask=attention_mask.to(loaded.device)
        ).last_hidden_state
        last = hidden[torch.arange(len(batch)), torch.tensor([len(ids) - 1 for ids in batch])]
        logprobs = torch.log_softmax(_softcap(head(last).float(), cap), dim=-1)
        out.append(logprobs[:, wanted].cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def window_segments(
    doc: int,
    tokenized: TokenizedText,
    loaded: LoadedModel,
    window: int,
    stride: int | None,
    condition: tuple[int, ...] = (),
) -> list[Segment]:
    """A document's windows. With a ``condition`` (token ids, BOS included, that every window is read after),
    the windows are shorter by its length, and every content token is scored (the prefix predicts the first)."""
    prefix = condition or tuple(loaded.prefix_ids)
    content = tokenized.content_ids
    plan = plan_windows(len(content), len(prefix), window=window, stride=stride)
    return [
        Segment(doc, part, prefix + tuple(content[start:end]), len(prefix) + score_start - start, len(condition))
        for part, (start, score_start, end) in enumerate(plan)
    ]


def condition_ids(loaded: LoadedModel, text: str) -> tuple[int, ...]:
    """A conditioning prefix's token ids: the model's BOS (if it adds one) and the text's tokens, tokenized on its
    own (so the texts read after it keep exactly their own tokens)."""
    (tokens,) = tokenize_texts([text], loaded)
    return tuple(loaded.prefix_ids) + tuple(tokens.content_ids)


@dataclass(frozen=True)
class Shard:
    """This process's share of a multi-process run: ``index`` of ``count`` processes, and a barrier."""

    index: int
    count: int
    wait_for_everyone: Callable[[], None]


def _batches(segments: list[Segment], batch_size: int) -> list[list[Segment]]:
    """Length-sorted batches (longest first, so an out-of-memory error happens at once)."""
    ordered = sorted(segments, key=lambda segment: -len(segment.input_ids))
    return [ordered[start : start + batch_size] for start in range(0, len(ordered), batch_size)]


def _batches_by_tokens(segments: list[Segment], budget: int) -> list[list[Segment]]:
    """Length-sorted batches of at most ``budget`` padded tokens each (segments x longest), at least one segment.

    >>> lengths = [9, 3, 8, 2, 2]
    >>> [[len(s.input_ids) for s in b] for b in _batches_by_tokens([Segment(0, i, (1,) * n, 1) for i, n in
    ...  enumerate(lengths)], 18)]
    [[9, 8], [3, 2, 2]]
    """
    ordered = sorted(segments, key=lambda segment: -len(segment.input_ids))
    batches: list[list[Segment]] = []
    for segment in ordered:
        if batches and (len(batches[-1]) + 1) * len(batches[-1][0].input_ids) <= budget:
            batches[-1].append(segment)
        else:
            batches.append([segment])
    return batches


def auto_token_budget(loaded: LoadedModel, window: int) -> int:
    """``--batch-size auto``: the token budget for this model, device and window (``llm_mia.engine.batch_size``)."""
    from llm_mia.engine.batch_size import token_budget
    from llm_mia.engine.stats_cache import model_fingerprint

    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    dtype_bytes = activation_bytes(loaded.spec.dtype)

    def run(count: int) -> None:
        ids = (loaded.prefix_ids[0] if loaded.prefix_ids else 0, *([1] * (window - 1)))
        _run_batch(loaded, [Segment(document=i, part=0, input_ids=ids, score_from=1) for i in range(count)])

    key = f"{model_fingerprint(loaded)}|{loaded.device}|{loaded.spec.dtype}|window={window}"
    return token_budget(
        key,
        device=loaded.device,
        window=window,
        config=loaded.model.config,
        dtype_bytes=dtype_bytes,
        head_bytes=min(HEAD_CHUNK_BYTES, vocab * 4 * window),
        run=run,
        is_out_of_memory=_is_out_of_memory,
    )


def _batch_groups(batches: list[list[Segment]]) -> list[list[int]]:
    """Batches linked by a shared document (a long text's windows), as groups that must run in one process.

    Assigning whole groups to processes keeps every batch's composition the same for any number of
    processes, so a document's numbers do not depend on how the work was split.
    """
    parent = list(range(len(batches)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_batch_of: dict[int, int] = {}
    for number, batch in enumerate(batches):
        for segment in batch:
            other = first_batch_of.setdefault(segment.document, number)
            parent[root(number)] = root(other)
    groups: dict[int, list[int]] = {}
    for number in range(len(batches)):
        groups.setdefault(root(number), []).append(number)
    return list(groups.values())


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and (
        "out of memory" in str(error).lower() or "can't allocate memory" in str(error).lower()
    )


def _run_with_backoff(
    loaded: LoadedModel, batch: list[Segment], context: ExtractionContext | None = None
) -> list[tuple[Segment, dict[str, np.ndarray] | None]]:
    """Run a batch; on out-of-memory halve it and retry the same segments, down to one.

    A segment that does not fit even alone comes back with ``None`` (its document is then reported with
    STATUS_OUT_OF_MEMORY), never silently dropped.
    """
    try:
        flat = _run_batch(loaded, batch, context)
    except (RuntimeError, torch.OutOfMemoryError) as error:
        if not _is_out_of_memory(error):
            raise
        if loaded.device.startswith("cuda"):
            torch.cuda.empty_cache()
        if len(batch) == 1:
            logger.warning("document %d does not fit in memory even alone", batch[0].document)
            return [(batch[0], None)]
        half = len(batch) // 2
        logger.warning(
            "out of memory on a batch of %d segments; retrying as %d + %d", len(batch), half, len(batch) - half
        )
        return _run_with_backoff(loaded, batch[:half], context) + _run_with_backoff(loaded, batch[half:], context)
    results: list[tuple[Segment, dict[str, np.ndarray] | None]] = []
    offset = 0
    for segment in batch:
        count = len(segment.input_ids) - segment.score_from
        results.append((segment, {k: v[offset : offset + count] for k, v in flat.items()}))
        offset += count
    return results


def _batch_fingerprint(batch: Sequence[Segment]) -> str:
    """What decides a batch's numbers besides model and settings: its segments' tokens, in batch order."""
    import hashlib

    digest = hashlib.sha256()
    for segment in batch:
        digest.update(np.asarray(segment.input_ids, dtype=np.int64).tobytes())
        digest.update(segment.score_from.to_bytes(4, "little"))
    return digest.hexdigest()


def _group_fingerprint(batches: Sequence[Sequence[Segment]]) -> str:
    """What decides a group's numbers besides model and settings: every batch's segments, in batch order.

    A document's floats depend on its batch (padding length, rows per matmul), so cache entries are keyed by
    this too: an entry computed in another batch layout is never reused, and a resumed run gives the same bits
    as an uninterrupted one whatever the cache held.
    """
    import hashlib

    digest = hashlib.sha256()
    for batch in batches:
        digest.update(b"batch")
        for segment in batch:
            digest.update(np.asarray(segment.input_ids, dtype=np.int64).tobytes())
            digest.update(segment.score_from.to_bytes(4, "little"))
    return digest.hexdigest()


def _window_keys(
    batches: Sequence[Sequence[Segment]], texts: Sequence[str], settings_id: str, skip: Container[int]
) -> dict[tuple[int, int], str]:
    """Cache keys of the windows of every document with several windows in ``batches`` (documents in ``skip``
    left out), by (document, window index): ``llm_mia.engine.stats_cache.window_key``, with the batch each window runs
    in."""
    windows = Counter(segment.document for batch in batches for segment in batch)
    long_documents = {doc for doc, count in windows.items() if count > 1 and doc not in skip}
    text_hashes = {doc: sha256_text(texts[doc]) for doc in long_documents}
    keys: dict[tuple[int, int], str] = {}
    for batch in batches:
        if not any(segment.document in long_documents for segment in batch):
            continue
        fingerprint = _batch_fingerprint(batch)
        for row, segment in enumerate(batch):
            if segment.document in long_documents:
                keys[segment.document, segment.part] = cache_window_key(
                    settings_id,
                    text_sha256=text_hashes[segment.document],
                    index=segment.part,
                    batch=fingerprint,
                    row=row,
                )
    return keys


def _scored_tokens(batch: Sequence[Segment]) -> int:
    return sum(len(segment.input_ids) - segment.score_from for segment in batch)


def _model_tokens(batch: Sequence[Segment]) -> int:
    """Tokens the forward pass reads: rows x longest (context and padding included)."""
    return len(batch) * max(len(segment.input_ids) for segment in batch)


def _throughput_key(loaded: LoadedModel, window: int) -> str:
    threads = torch.get_num_threads() if loaded.device == "cpu" else None
    return f"{loaded.spec.name}|{loaded.spec.revision}|{loaded.device}|{loaded.spec.dtype}|{window}|{threads}"


def _cost_message(
    description: str, batches: Sequence[Sequence[Segment]], window: int, stride: int, resumed_tokens: int
) -> str:
    """Tokens, documents, windows and forward passes a run is about to make (without the time)."""
    tokens = sum(_scored_tokens(batch) for batch in batches)
    documents = len({segment.document for batch in batches for segment in batch})
    windows = sum(len(batch) for batch in batches)
    passes = len(batches)
    return (
        f"{description}: {tokens:,} tokens to score in {documents:,} document(s): {windows:,} window(s) of up to "
        f"{window:,} tokens (stride {stride:,}), {passes:,} forward "
        f"pass(es)" + (f"; {resumed_tokens:,} tokens already in the stats cache" if resumed_tokens else "")
    )


def extract(
    texts: Sequence[str],
    loaded: LoadedModel,
    settings: ExtractionSettings | None = None,
    *,
    cache: StatsCache | None = None,
    shard: Shard | None = None,
    description: str = "scoring",
    observer: Callable[[str, list[tuple[int, int, int]]], None] | None = None,
    condition: Sequence[int] = (),
    context: ExtractionContext | None = None,
) -> list[TokenStats]:
    """Run ``loaded`` over ``texts``; return one TokenStats per text, in input order.

    ``condition``: token ids (from :func:`condition_ids`) every text is read after, as ReCaLL needs: encoded once
    and reused for every batch; each text's windows are shorter by its length (a prefix that leaves fewer than
    2 tokens of the window is refused), and every token of the text is scored.

    Empty or whitespace-only texts, texts with no scorable token, documents whose logits contain NaN/inf and
    documents that do not fit in memory even alone get a TokenStats with a status saying why (and empty
    arrays); every other text is scored in full. A text's numbers do not depend on the batch size or on the
    other texts beyond float rounding (< 1e-4); for the same texts and settings they are bit-identical.

    Batches are planned once over every text, whatever the cache holds. ``cache``: groups of batches whose
    documents are all cached (computed in this very batch layout) are not recomputed; each finished batch is
    committed at once: the documents it finishes, and the windows it computed of documents not finished yet
    (a long text's windows, keyed by the batch they ran in: ``llm_mia.engine.stats_cache.window_key``). A batch whose
    every
    window is cached is not run again, so a run killed inside one long document resumes there, with the same
    bits. ``shard``: in a multi-process run, this process computes its share of the groups (identical for any
    process count), commits them to the shared ``cache`` (required), waits for the others, and returns every
    document's stats. ``description`` labels the progress bar (which counts tokens, batch by batch) and the cost
    printed before the first forward pass (tokens, windows, passes, and the time they should take).
    ``observer(event, segments)``, when given, hears of every model call before it is made (``event`` "model
    call", ``segments`` the batch's (document index, window index, tokens) triples), of the documents this
    process takes from the cache (``event`` "from cache", window and tokens 0) and of the windows of unfinished
    documents it takes from the cache (``event`` "from cache", their window index and tokens): an audit trail
    of what the model was asked. ``context``: what the run's extractions share and report (the prefix encoded
    once, the budget ``--batch-size auto`` chose); None: a fresh one, private to this call.
    """
    settings = settings or ExtractionSettings()
    context = context if context is not None else ExtractionContext()
    window = settings.window or loaded.context_length
    if window > loaded.context_length:
        raise LlmMiaError(f"window {window} exceeds the model's context length {loaded.context_length}")
    if shard is not None and cache is None:
        raise LlmMiaError("a multi-process run needs the stats cache to merge results; do not disable it")
    condition = tuple(condition)
    if condition and window - len(condition) < 2:
        raise LlmMiaError(
            f"the conditioning prefix has {len(condition)} tokens and the window {window}: that leaves "
            f"{window - len(condition)} for the text; use a shorter prefix (fewer texts in it)"
        )
    candidates = [i for i, text in enumerate(texts) if text.strip()]
    tokenized = dict(zip(candidates, tokenize_texts([texts[i] for i in candidates], loaded), strict=True))
    segments: list[Segment] = []
    for index, tokens in tokenized.items():
        if len(tokens.content_ids) + len(condition or loaded.prefix_ids) >= 2:  # a token has a predecessor
            segments.extend(window_segments(index, tokens, loaded, window, settings.stride, condition))
    if settings.batch_size == "auto":
        budget = auto_token_budget(loaded, window)
        context.batch_tokens[loaded.spec.name] = budget
        batches = _batches_by_tokens(segments, budget)
    else:
        batches = _batches(segments, settings.batch_size)
    groups = _batch_groups(batches)
    keys: dict[int, str] = {}
    cached: dict[int, TokenStats] = {}
    window_keys: dict[tuple[int, int], str] = {}
    found_windows: dict[str, dict[str, np.ndarray]] = {}
    if cache is not None:
        settings_id = cache_settings_key(loaded, window=window, stride=settings.stride)
        for group in groups:
            fingerprint = _group_fingerprint([batches[n] for n in group])
            # each document's text hashed once, not once per window (that would be quadratic in a long text)
            for doc in dict.fromkeys(segment.document for n in group for segment in batches[n]):
                keys[doc] = cache_entry_key(f"{settings_id}|{fingerprint}", texts[doc])
        found = cache.get_many(list(keys.values()))
        cached = {doc: found[key] for doc, key in keys.items() if key in found}
    mine = [group for g, group in enumerate(groups) if shard is None or g % shard.count == shard.index]
    todo = [group for group in mine if any(s.document not in cached for n in group for s in batches[n])]
    work = [batches[n] for group in todo for n in group]
    if cache is not None and work:  # the finished windows of documents a killed run left unfinished
        window_keys = _window_keys(work, texts, settings_id, skip=cached)
        found_windows = cache.get_windows(list(window_keys.values()))

    def in_cache(segment: Segment) -> bool:
        key = window_keys.get((segment.document, segment.part))
        return segment.document in cached or (key is not None and key in found_windows)

    resumed = [batch for batch in work if all(map(in_cache, batch))]
    to_run = [batch for batch in work if not all(map(in_cache, batch))]
    parts: dict[int, list[dict[str, np.ndarray] | None]] = {
        doc: [{}] * n for doc, n in Counter(segment.document for segment in segments).items()
    }
    remaining = Counter(segment.document for batch in work for segment in batch if segment.document not in cached)
    computed: dict[int, TokenStats] = {}

    def take(results: Sequence[tuple[Segment, dict[str, np.ndarray] | None]], *, fresh: bool) -> None:
        """Record a batch's windows; assemble the documents it finishes; commit both in one transaction."""
        finished = []
        for segment, values in results:
            if segment.document in cached:  # its numbers are already known, bit for bit
                continue
            parts[segment.document][segment.part] = values
            remaining[segment.document] -= 1
            if remaining[segment.document] == 0:
                finished.append(segment.document)
        done = {doc: _assemble(texts[doc], tokenized[doc], parts[doc], loaded, bool(condition)) for doc in finished}
        computed.update(done)
        if cache is None:
            return
        unfinished = [
            (window_keys[segment.document, segment.part], values)
            for segment, values in results
            if fresh and values is not None and remaining[segment.document] > 0 and segment.document not in cached
        ]
        drop = [
            window_keys[doc, part] for doc in finished for part in range(len(parts[doc])) if (doc, part) in window_keys
        ]
        cache.put_many(((keys[doc], stats) for doc, stats in done.items()), windows=unfinished, drop_windows=drop)

    resumed_tokens = sum(map(_scored_tokens, resumed))
    total_tokens = resumed_tokens + sum(map(_scored_tokens, to_run))
    bar = tqdm(
        total=total_tokens,
        initial=resumed_tokens,
        unit="tok",
        unit_scale=True,
        disable=not settings.progress,
        desc=description,
    )

    def say(message: str) -> None:
        if settings.progress:
            bar.write(message, file=sys.stderr)
        logger.info(message)

    rate_key = _throughput_key(loaded, window)
    rate = remembered_throughput(rate_key)
    timed_tokens, timed_seconds = 0, 0.0  # model time of this run, the first forward pass (warm-up) left out
    with bar:
        reused_documents = sorted({s.document for group in mine for n in group for s in batches[n]} & cached.keys())
        if observer is not None and reused_documents:
            observer("from cache", [(doc, 0, 0) for doc in reused_documents])
        resumed_windows = [
            (s.document, s.part, len(s.input_ids)) for batch in resumed for s in batch if s.document not in cached
        ]
        if observer is not None and resumed_windows:
            observer("from cache", resumed_windows)
        if cache is not None and (reused_documents or resumed_windows):  # both need the cache
            unfinished_documents = len({doc for doc, _, _ in resumed_windows})
            say(
                f"{description}: resuming, {len(reused_documents)} document(s)"
                + (
                    f" and {len(resumed_windows):,} finished window(s) of {unfinished_documents} unfinished document(s)"
                    if resumed_windows
                    else ""
                )
                + f" found in the stats cache ({cache.path})"
            )
        for batch in resumed:
            take(
                [
                    (s, found_windows[window_keys[s.document, s.part]] if s.document not in cached else None)
                    for s in batch
                ],
                fresh=False,
            )
        if to_run:
            capacity = window - len(condition or loaded.prefix_ids)  # as plan_windows counts it
            stride = capacity // 2 if settings.stride is None else settings.stride
            cost = _cost_message(description, to_run, window, stride, resumed_tokens)
            model_tokens = sum(map(_model_tokens, to_run))
            if rate is not None:
                say(f"{cost}; {throughput_duration(model_tokens / rate)} at the speed of the last such run here")
            elif len(to_run) > 1:
                say(f"{cost}; an estimate of the time follows the first forward pass")
            else:
                say(cost)
        try:
            for number, batch in enumerate(to_run):
                if observer is not None:
                    observer("model call", [(s.document, s.part, len(s.input_ids)) for s in batch])
                started = time.perf_counter()
                results = _run_with_backoff(loaded, batch, context)
                seconds = time.perf_counter() - started
                if number == 0 and rate is None and len(to_run) > 1:
                    left = sum(map(_model_tokens, to_run[1:]))
                    first_rate = _model_tokens(batch) / max(seconds, 1e-9)
                    say(
                        f"{description}: {throughput_duration(left / first_rate)} to go at the speed of the first "
                        f"forward pass ({_scored_tokens(batch) / max(seconds, 1e-9):,.0f} scored tokens/s)"
                    )
                elif number > 0:
                    timed_tokens, timed_seconds = timed_tokens + _model_tokens(batch), timed_seconds + seconds
                take(results, fresh=True)
                bar.update(_scored_tokens(batch))
        finally:
            remember_throughput(rate_key, tokens=timed_tokens, seconds=timed_seconds)
    if shard is not None and cache is not None:  # a sharded run without the cache was refused above
        shard.wait_for_everyone()
        others = [
            s.document
            for g, group in enumerate(groups)
            if g % shard.count != shard.index
            for n in group
            for s in batches[n]
        ]
        others = list(dict.fromkeys(doc for doc in others if doc not in cached))
        found = cache.get_many([keys[i] for i in others])
        lost = [i for i in others if keys[i] not in found]
        if lost:
            raise LlmMiaError(f"{len(lost)} document(s) computed by other processes are missing from the cache")
        cached.update({i: found[keys[i]] for i in others})
    known = {**cached, **computed}  # by document
    return [
        known[i] if i in known else _assemble(texts[i], tokenized.get(i), parts.get(i), loaded, bool(condition))
        for i in range(len(texts))
    ]


def _assemble(
    text: str,
    tokens: TokenizedText | None,
    parts: list[dict[str, np.ndarray] | None] | None,
    loaded: LoadedModel,
    conditioned: bool = False,
) -> TokenStats:
    n_bytes = len(text.encode("utf-8"))
    first_scored = loaded.adds_bos or conditioned  # a BOS or a conditioning prefix predicts the first token
    common: TextFacts = {
        "n_bytes": n_bytes,
        "zlib_bytes": zlib_length(text),
        "bos_added": first_scored,
        "tokenizer_id": loaded.tokenizer_id,
    }
    if tokens is None:
        return TokenStats.empty(status=STATUS_EMPTY, n_tokens=0, **common)
    if not parts:
        return TokenStats.empty(status=STATUS_TOO_SHORT, n_tokens=len(tokens.content_ids), **common)
    complete = [part for part in parts if part is not None]
    if len(complete) < len(parts):
        return TokenStats.empty(
            status=STATUS_OUT_OF_MEMORY, n_tokens=len(tokens.content_ids), n_windows=len(parts), **common
        )
    joined = {name: np.concatenate([part[name] for part in complete]) for name in complete[0]}
    finite = all(np.isfinite(joined[name]).all() for name in ("logprob", "mu", "sigma", "top1_logprob"))
    if not finite:
        return TokenStats.empty(
            status=STATUS_NONFINITE, n_tokens=len(tokens.content_ids), n_windows=len(parts), **common
        )
    return TokenStats(
        token_ids=joined["token_ids"].astype(np.int64),
        logprob=joined["logprob"],
        mu=joined["mu"],
        sigma=joined["sigma"],
        rank=joined["rank"].astype(np.int64),
        top1_logprob=joined["top1_logprob"],
        n_bytes_scored=n_bytes if first_scored else n_bytes - tokens.first_token_bytes,
        n_tokens=len(tokens.content_ids),
        n_windows=len(parts),
        **common,
    )
