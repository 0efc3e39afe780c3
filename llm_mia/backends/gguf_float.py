"""A float32 copy of a quantized GGUF: the same weights as transformers dequantizes them, for llama.cpp.

llama.cpp multiplies quantized weights with activations that it quantizes too (8-bit blocks for Q4_1), so a
quantized GGUF served by llama.cpp gives token log-probs that differ from the float32 forward pass of the same
dequantized weights by arithmetic alone: measured on the packaged SmolLM2 Q4_1, 0.06-0.13 nats per token on
average and up to 0.03 nats per token in a text's mean loss. The float32 copy written here takes that
arithmetic out: served by llama.cpp it agrees with the white-box engine to about 0.001 nats per token in the
loss, so ``llm-mia check-backend`` on it tests the backend (the HTTP path, token alignment, the log-prob
bookkeeping) rather than the quantization. Metadata (architecture, tokenizer, hyperparameters) is copied key
by key; every tensor is dequantized with gguf-py's reference dequantizers (``gguf.quants.dequantize``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llm_mia.errors import LlmMiaError


def write_float32_gguf(source: str | Path, target: str | Path) -> Path:
    """Write ``target``: ``source`` (any GGUF) with every tensor dequantized to float32; returns ``target``."""
    import gguf

    source, target = Path(source), Path(target)
    if not source.is_file():
        raise LlmMiaError(f"{source}: no such GGUF file")
    reader = gguf.GGUFReader(source)
    architecture = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(target, arch=architecture)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.file_type"):
            continue  # the header, written by the writer itself; the file type is no longer quantized
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), value_type, sub_type=sub_type)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        shape = [int(n) for n in reversed(tensor.shape)]  # GGUF lists dimensions innermost first
        writer.add_tensor(tensor.name, values.reshape(shape), raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target
