#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Soak test of the blockq tool (run by tests/soak.sh; not part of CI).

Each iteration writes a random input — a valid .safetensors or .npy file with
odd names, dtypes, shapes and values (NaN, Inf, huge, tiny), or a corrupted
one (bytes flipped, cut short, header length or JSON mangled) — and runs
quantize, dequantize and report on it. It checks, for every run:
  * no signal (exit code 0, 1 or 2, within a time limit: no hang);
  * no temporary file left behind (.NAME.blockq-XXXXXX);
  * no output for a failed run (and an existing output untouched);
  * byte-identical outputs for 1, 2 and 3 threads;
  * one "blockq: error:" line for a failure.
Some iterations truncate the input while the tool reads it.
Standard library only. Usage: soak.py TOOL ITERATIONS [SEED]
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time

DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
          "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
FORMATS = ["mxfp4", "nvfp4", "fp4", "mxfp6_e2m3", "mxfp8_e4m3", "mxint8", "int2", "int4", "int8", "uint3", "uint8"]
TIME_LIMIT = 120


def rand_name(r):
    kind = r.random()
    if kind < 0.05:
        return ""
    if kind < 0.1:
        return "x" * r.randint(100, 5000)
    if kind < 0.2:
        return "层.%d.权重" % r.randint(0, 99)
    if kind < 0.25:
        return "a\"b\\c\n\t%d" % r.randint(0, 9)
    return "model.layers.%d.%s" % (r.randint(0, 999), r.choice(["q_proj.weight", "mlp.up", "norm", "w", "experts.3.w2"]))


def rand_value(r):
    k = r.random()
    if k < 0.01:
        return float("nan")
    if k < 0.02:
        return r.choice([float("inf"), float("-inf")])
    if k < 0.04:
        return r.choice([3.4e38, -3.4e38, 1e-40, -1e-44, 1e30])
    return r.gauss(0.0, r.choice([1e-3, 0.02, 1.0, 100.0]))


def tensor_bytes(r, dtype, n):
    if n == 0:
        return b""
    if dtype == "F32":
        return struct.pack("<%df" % n, *[rand_value(r) for _ in range(n)])
    if dtype == "F16":
        out = bytearray()
        for _ in range(n):
            v = rand_value(r)
            try:
                out += struct.pack("<e", v)
            except (OverflowError, struct.error):
                out += struct.pack("<H", 0x7C00)
        return bytes(out)
    if dtype == "BF16":
        return b"".join(struct.pack("<f", rand_value(r))[2:] for _ in range(n))
    return bytes(r.getrandbits(8) for _ in range(n * DTYPES[dtype]))


def rand_shape(r):
    k = r.random()
    if k < 0.05:
        return []
    if k < 0.1:
        return [r.choice([0, 3]), 32]
    if k < 0.13:
        return [1] * r.randint(60, 64) + [32]
    last = r.choice([16, 32, 48, 64, 96, 128, 31, 1])
    return [r.randint(1, 6) for _ in range(r.randint(0, 3))] + [last]


def safetensors_file(r):
    tensors, names = [], set()
    for _ in range(r.randint(1, 8)):
        name = rand_name(r)
        if name in names or name == "__metadata__":
            continue
        names.add(name)
        dtype = r.choice(["F32", "F32", "F16", "BF16"] + list(DTYPES))
        shape = rand_shape(r)
        n = 1
        for d in shape:
            n *= d
        tensors.append((name, dtype, shape, tensor_bytes(r, dtype, n)))
    header, at = {}, 0
    if r.random() < 0.5:
        header["__metadata__"] = {"format": "pt", "blockq.note": "soak", "k%d" % r.randint(0, 9): "v"}
        if r.random() < 0.2:
            header["__metadata__"]["blockq.rule"] = "old"
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        at += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def npy_file(r):
    shape = [r.randint(1, 4), r.choice([16, 32, 64])]
    descr, dtype = r.choice([("<f4", "F32"), ("<f2", "F16"), (">f4", None)])
    n = shape[0] * shape[1]
    data = tensor_bytes(r, dtype, n) if dtype else struct.pack(">%df" % n, *[rand_value(r) for _ in range(n)])
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': (%d, %d), }" % (descr, r.choice(["False", "True"]), *shape)
    d += " " * ((64 - (10 + len(d) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode() + data


def corrupt(r, data):
    data = bytearray(data)
    k = r.random()
    if k < 0.3 and len(data) > 8:
        data = data[: r.randint(0, len(data) - 1)]  # cut short
    elif k < 0.5:
        struct.pack_into("<Q", data, 0, r.choice([0, 1, 2**63, len(data), r.getrandbits(32)]))
    elif k < 0.8:
        for _ in range(r.randint(1, 8)):  # flip bytes, mostly in the header
            i = r.randint(0, min(len(data) - 1, 8 + r.randint(0, 200)))
            data[i] = r.getrandbits(8)
    else:
        i = r.randint(8, max(8, len(data) - 1))
        data[i:i] = r.choice([b"{", b"}", b"\"", b"[[[[", b"\\u0000", b",\"x\":1"])
    return bytes(data)


class Soak:
    def __init__(self, tool, seed):
        self.tool, self.r = tool, random.Random(seed)
        self.runs = self.ok = self.failed = 0
        self.problems = []

    def run(self, args, cwd, output=None):
        """Runs the tool; checks signals, hangs, temporary files, outputs of failures."""
        before = os.path.exists(os.path.join(cwd, output)) if output else False
        before_bytes = open(os.path.join(cwd, output), "rb").read() if before else None
        self.runs += 1
        try:
            p = subprocess.run([self.tool] + args, cwd=cwd, capture_output=True, timeout=TIME_LIMIT)
        except subprocess.TimeoutExpired:
            self.problem(args, "no answer within %d s (hang?)" % TIME_LIMIT)
            return None
        if p.returncode < 0 or p.returncode > 2:
            self.problem(args, "exit code %d (signal %s); stderr: %s" % (p.returncode, -p.returncode, p.stderr[-300:]))
        for e in os.listdir(cwd):
            if ".blockq-" in e:
                self.problem(args, "temporary file left behind: " + e)
                os.remove(os.path.join(cwd, e))
        if p.returncode != 0:
            self.failed += 1
            err = p.stderr.decode(errors="replace")
            if "blockq: error: " not in err:
                self.problem(args, "failure without an error line: " + err[-300:])
            if output:
                now = os.path.exists(os.path.join(cwd, output))
                if now != before or (now and open(os.path.join(cwd, output), "rb").read() != before_bytes):
                    self.problem(args, "a failed run changed its output")
        else:
            self.ok += 1
        return p

    def problem(self, args, what):
        self.problems.append("%s: %s" % (" ".join(args)[:200], what))
        print("PROBLEM:", self.problems[-1], file=sys.stderr)

    def same_for_threads(self, make_args, cwd, outputs):
        """Runs with 1, 2 and 3 threads; all must agree byte for byte."""
        results = []
        for t, out in zip((1, 2, 3), outputs):
            p = self.run(make_args(out) + ["--threads", str(t)], cwd, out)
            path = os.path.join(cwd, out)
            results.append((p.returncode if p else None, open(path, "rb").read() if os.path.exists(path) else None))
        if len(set(results)) != 1:
            self.problem(make_args(outputs[0]), "results differ across thread counts: %s" %
                         [(c, None if b is None else len(b)) for c, b in results])
        return results[0]

    def iteration(self, i, work):
        r = self.r
        d = os.path.join(work, "it%d" % i)
        os.makedirs(d)
        npy = r.random() < 0.15
        data = npy_file(r) if npy else safetensors_file(r)
        corrupted = r.random() < 0.4
        if corrupted:
            data = corrupt(r, data)
        name = "in.npy" if npy else "in.safetensors"
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        fmt = r.choice(FORMATS)
        extra = []
        if r.random() < 0.3:
            extra += ["--tensors", r.choice(["w", "^model", "层", "(a*)*b", "x{100}", "\\d+\\.", ""])]
        if r.random() < 0.2:
            extra += ["--block", str(r.choice([16, 32, 64]))]

        def q_args(out):
            return ["quantize", name, "-o", out, "--format", fmt] + extra

        code, q = self.same_for_threads(q_args, d, ["q1.safetensors", "q2.safetensors", "q3.safetensors"])
        if code == 0:
            self.same_for_threads(lambda out: ["dequantize", "q1.safetensors", "-o", out], d,
                                  ["d1.safetensors", "d2.safetensors", "d3.safetensors"])
            # A corrupted quantized file, too.
            with open(os.path.join(d, "qbad.safetensors"), "wb") as f:
                f.write(corrupt(r, q))
            self.run(["dequantize", "qbad.safetensors", "-o", "dbad.safetensors"], d, "dbad.safetensors")
            # Never over the input, even through a link.
            os.link(os.path.join(d, name), os.path.join(d, "hard.safetensors"))
            p = self.run(["quantize", name, "-o", "hard.safetensors", "--format", fmt], d, "hard.safetensors")
            if p and p.returncode == 0:
                self.problem(["quantize", name, "-o", "hard.safetensors"], "wrote over its input (a hard link)")
        if r.random() < 0.3:
            self.run(["report", name, "--formats", ",".join(r.sample(FORMATS, 2)), "--rules", "default"], d)
        if r.random() < 0.1 and not npy and len(data) > 4096:
            self.truncated_while_read(d, name, data, fmt)
        shutil.rmtree(d)

    def truncated_while_read(self, d, name, data, fmt):
        big = os.path.join(d, "big.safetensors")
        # A large valid file, cut while the tool reads it.
        n = 1 << 21
        header = json.dumps({"w": {"dtype": "F32", "shape": [n // 256, 256], "data_offsets": [0, 4 * n]}}).encode()
        with open(big, "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header + os.urandom(4 * n))
        cut = threading.Timer(self.r.uniform(0.0, 0.05), lambda: os.truncate(big, self.r.randint(0, 4096)))
        cut.start()
        self.run(["quantize", "big.safetensors", "-o", "bigq.safetensors", "--format", fmt], d, "bigq.safetensors")
        cut.join()
        if os.path.exists(os.path.join(d, "bigq.safetensors")):
            os.remove(os.path.join(d, "bigq.safetensors"))


def main():
    tool, iterations = os.path.abspath(sys.argv[1]), int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else int(time.time())
    s = Soak(tool, seed)
    work = tempfile.mkdtemp(prefix="blockq-soak-")
    t0 = time.time()
    try:
        for i in range(iterations):
            s.iteration(i, work)
            if (i + 1) % 50 == 0:
                print("soak: %d iterations, %d runs, %d problems" % (i + 1, s.runs, len(s.problems)), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("soak (seed %d): %d iterations, %d runs (%d succeeded, %d failed cleanly), %d problems, %.0f s"
          % (seed, iterations, s.runs, s.ok, s.failed, len(s.problems), time.time() - t0))
    for p in s.problems[:50]:
        print("  " + p)
    return 1 if s.problems else 0


if __name__ == "__main__":
    sys.exit(main())
