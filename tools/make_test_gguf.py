#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a synthetic llama-style GGUF "model" (F16 weights, F32 norms) for
blockq's tests and the README's GGUF example. Python 3 standard library only.

The file follows GGUF v3 as documented in ggml's docs/gguf.md: the header,
the key/value pairs, the tensor infos (ne innermost first), zero padding to
the alignment, then each tensor's bytes padded to the alignment. The weights
are random (seeded): Student-t-like rows (a normal times a per-row scale)
with a few outliers, so quantization errors look like a real model's.

  tools/make_test_gguf.py OUT.gguf [--layers 2] [--embd 256] [--ff 688]
      [--vocab 512] [--experts 0] [--odd] [--alignment 32] [--seed 1]
"""
import argparse
import array
import math
import random
import struct
import sys

# GGUF value types and ggml tensor types used here.
U32, I32, F32, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10
GGML_F32, GGML_F16 = 0, 1


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, v):
    if vtype == STRING:
        return gguf_string(v)
    if vtype == ARRAY:
        etype, items = v
        out = struct.pack("<IQ", etype, len(items))
        return out + b"".join(gguf_value(etype, x) for x in items)
    fmt = {U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q"}[vtype]
    return struct.pack(fmt, v)


def pad(n, a):
    return (n + a - 1) // a * a


def make_weights(rng, rows, cols, std):
    """rows x cols floats: per-row scale (log-normal) x normal, 0.1% outliers."""
    out = array.array("f")
    for _ in range(rows):
        s = std * math.exp(rng.gauss(0.0, 0.25))
        row = [rng.gauss(0.0, s) for _ in range(cols)]
        for _ in range(max(1, cols // 1000)):
            row[rng.randrange(cols)] *= 8.0
        out.extend(row)
    return out


def f16_bytes(values):
    return struct.pack("<%de" % len(values), *values)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embd", type=int, default=256)
    p.add_argument("--ff", type=int, default=688)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--experts", type=int, default=0, help="mixture of experts: ffn_*_exps tensors and ffn_gate_inp")
    p.add_argument("--odd", action="store_true", help="add a weight whose rows (40) are not a multiple of 32")
    p.add_argument("--alignment", type=int, default=32)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    rng = random.Random(a.seed)
    heads = max(1, a.embd // 64)

    kv = [
        ("general.architecture", STRING, "llama"),
        ("general.name", STRING, "blockq synthetic llama"),
        ("general.file_type", U32, 1),  # LLAMA_FTYPE_MOSTLY_F16
        ("llama.block_count", U32, a.layers),
        ("llama.context_length", U32, 2048),
        ("llama.embedding_length", U32, a.embd),
        ("llama.feed_forward_length", U32, a.ff),
        ("llama.attention.head_count", U32, heads),
        ("llama.attention.head_count_kv", U32, heads),
        ("llama.rope.freq_base", F32, 10000.0),
        ("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
        ("tokenizer.ggml.model", STRING, "llama"),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, ["<unk>", "<s>", "</s>"] + ["tok%d" % i for i in range(3, a.vocab)])),
        ("tokenizer.ggml.scores", ARRAY, (F32, [-float(i) for i in range(a.vocab)])),
        ("tokenizer.ggml.token_type", ARRAY, (I32, [2, 3, 3] + [1] * (a.vocab - 3))),
        ("tokenizer.ggml.bos_token_id", U32, 1),
        ("tokenizer.ggml.eos_token_id", U32, 2),
        ("tokenizer.ggml.add_bos_token", BOOL, True),
    ]
    if a.experts:
        kv += [("llama.expert_count", U32, a.experts), ("llama.expert_used_count", U32, min(2, a.experts))]
    if a.alignment != 32:
        kv.append(("general.alignment", U32, a.alignment))

    # (name, ggml type, ne innermost first, bytes)
    tensors = []

    def weight(name, ne, std=0.02):
        rows = 1
        for d in ne[1:]:
            rows *= d
        tensors.append((name, GGML_F16, ne, f16_bytes(make_weights(rng, rows, ne[0], std))))

    def norm(name, n):
        vals = array.array("f", [1.0 + rng.gauss(0.0, 0.05) for _ in range(n)])
        tensors.append((name, GGML_F32, [n], vals.tobytes()))

    weight("token_embd.weight", [a.embd, a.vocab])
    for i in range(a.layers):
        b = "blk.%d." % i
        norm(b + "attn_norm.weight", a.embd)
        for t in ("attn_q", "attn_k", "attn_v", "attn_output"):
            weight(b + t + ".weight", [a.embd, a.embd])
        norm(b + "ffn_norm.weight", a.embd)
        if a.experts:
            g = make_weights(rng, a.experts, a.embd, 0.02)
            tensors.append((b + "ffn_gate_inp.weight", GGML_F32, [a.embd, a.experts], g.tobytes()))
            weight(b + "ffn_gate_exps.weight", [a.embd, a.ff, a.experts])
            weight(b + "ffn_up_exps.weight", [a.embd, a.ff, a.experts])
            weight(b + "ffn_down_exps.weight", [a.ff, a.embd, a.experts])
        else:
            weight(b + "ffn_gate.weight", [a.embd, a.ff])
            weight(b + "ffn_up.weight", [a.embd, a.ff])
            weight(b + "ffn_down.weight", [a.ff, a.embd])
    if a.odd:
        weight("blk.0.odd.weight", [40, 8])
    norm("output_norm.weight", a.embd)
    weight("output.weight", [a.embd, a.vocab])

    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, vtype, v in kv:
        head += gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, v)
    offset = 0
    for name, gtype, ne, data in tensors:
        head += gguf_string(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        head += struct.pack("<IQ", gtype, offset)
        offset = pad(offset + len(data), a.alignment)
    with open(a.out, "wb") as f:
        f.write(head + bytes(pad(len(head), a.alignment) - len(head)))
        for _, _, _, data in tensors:
            f.write(data + bytes(pad(len(data), a.alignment) - len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
