"""Write a tiny random-weight llama model as a GGUF file, for llama.cpp's server.

Nothing is downloaded: the weights are seeded random numbers, so the model
talks nonsense, but llama.cpp loads it, tokenizes, applies its chat template,
samples and follows a grammar exactly as it would with a real one. The file
is about 460 KB.

- architecture ``llama``: two layers, ``n_embd`` 64, four heads, ``n_ff`` 128,
  a context of 256 tokens;
- a byte-level vocabulary: the 256 bytes (spelt as GPT-2's byte-level BPE
  spells them, tokenizer model ``gpt2``, with a few merges, which llama.cpp
  requires), then ``<|endoftext|>`` (bos), ``<|im_start|>`` and
  ``<|im_end|>`` (eos), both marked as control tokens;
- a ChatML chat template in ``tokenizer.chat_template``.

The output layer is zero for every token but the printable ASCII bytes, so a
greedy sampler (``temperature=0``) writes printable text, deterministic for
the seed, and stops only at ``max_tokens`` unless a grammar (a named
``tool_choice``) ends the answer with eos.

Usage: ``python tests/llamacpp/make_model.py OUT.gguf``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

N_CTX = 256
N_EMBD = 64
N_HEAD = 4
N_FF = 128
N_LAYER = 2

BOS = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL = (BOS, IM_START, IM_END)

# ChatML, spelt exactly as llama-cpp-python spells it, so that it recognises
# the template as its "chatml" format.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Pairs of byte symbols merged into one token; llama.cpp refuses a BPE
# vocabulary without a merges list.
MERGES = (("Ġ", "t"), ("h", "e"), ("i", "n"), ("e", "r"))


def byte_symbols() -> list[str]:
    """The 256 bytes as GPT-2's byte-level BPE spells them, in byte order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    spelling: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in spelling:
            spelling[b] = chr(256 + extra)
            extra += 1
    return [spelling[b] for b in range(256)]


def vocabulary() -> tuple[list[str], list[int]]:
    """Token texts and their GGUF token types (1 normal, 3 control)."""
    tokens = byte_symbols() + ["".join(pair) for pair in MERGES] + list(SPECIAL)
    types = [1] * (len(tokens) - len(SPECIAL)) + [3] * len(SPECIAL)
    return tokens, types


def write_model(path: str | Path, seed: int = 20261202) -> Path:
    """Write the model to ``path`` and return the path."""
    path = Path(path)
    tokens, types = vocabulary()
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("chatproviders-tiny-random")
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([" ".join(pair) for pair in MERGES])
    writer.add_bos_token_id(tokens.index(BOS))
    writer.add_eos_token_id(tokens.index(IM_END))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML_TEMPLATE)

    output = weight(n_vocab, N_EMBD)
    printable = [ord(" "), *range(ord("!"), ord("~") + 1)]
    keep = np.zeros(n_vocab, dtype=bool)
    keep[printable] = True
    output[~keep] = 0.0

    writer.add_tensor("token_embd.weight", weight(n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for layer in range(N_LAYER):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(N_EMBD, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weight(N_EMBD, N_EMBD))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(N_EMBD, np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_up.weight", weight(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(N_EMBD, N_FF))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python make_model.py OUT.gguf", file=sys.stderr)
        return 2
    written = write_model(argv[0])
    print(f"{written} ({written.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
