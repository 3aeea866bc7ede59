// SPDX-License-Identifier: Apache-2.0
// Parses a GGUF file with @huggingface/gguf (an independent reader) and
// compares what it sees with what blockq meant to write (EXPECTED.json from
// gguf_expect): the version, every key with its type, element type and value,
// every tensor's name, ggml type, ne and offset, and the data section's start.
//   node check.mjs FILE.gguf EXPECTED.json
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { gguf } from "@huggingface/gguf";

const [file, expectedPath] = process.argv.slice(2);
const expected = JSON.parse(readFileSync(expectedPath, "utf8"));
const r = await gguf(resolve(file), { allowLocalFile: true, typedMetadata: true });

// BigInt (uint64, int64, tensor dims and offsets) as decimal strings, as gguf_expect writes them.
const norm = (v) => (typeof v === "bigint" ? v.toString() : Array.isArray(v) ? v.map(norm) : v);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b) && (typeof a !== "number" || Object.is(a, b));

const problems = [];
const check = (what, got, want) => {
  if (!same(got, want)) problems.push(`${what}: @huggingface/gguf sees ${JSON.stringify(got)}, blockq meant ${JSON.stringify(want)}`);
};

const m = r.metadata;
check("version", m.version, expected.version);
check("tensor count", norm(m.tensor_count), String(expected.tensors.length));
check("key/value count", norm(m.kv_count), String(expected.kv.length));
const pseudo = new Set(["version", "tensor_count", "kv_count"]);
const keys = Object.keys(r.typedMetadata).filter((k) => !pseudo.has(k));
check("keys in order", keys, expected.kv.map((e) => e.key));
for (const e of expected.kv) {
  const t = r.typedMetadata[e.key];
  if (!t) {
    problems.push(`key ${e.key}: missing`);
    continue;
  }
  check(`key ${e.key}: type`, t.type, e.type);
  if (e.type === 9) check(`key ${e.key}: element type`, t.subType, e.sub);
  check(`key ${e.key}: value`, norm(t.value), e.value);
}
check("tensors", r.tensorInfos.length, expected.tensors.length);
r.tensorInfos.forEach((t, i) => {
  const e = expected.tensors[i];
  if (!e) return;
  check(`tensor ${i} name`, t.name, e.name);
  check(`tensor ${e.name}: ggml type`, t.dtype, e.type);
  check(`tensor ${e.name}: ne`, norm(t.shape), e.ne);
  check(`tensor ${e.name}: offset`, norm(t.offset), e.offset);
});
check("data section offset", norm(r.tensorDataOffset), expected.data_offset);

if (problems.length) {
  console.error(`${file}: ${problems.length} difference(s):\n  ` + problems.join("\n  "));
  process.exit(1);
}
console.log(`${file}: @huggingface/gguf agrees: ${expected.kv.length} keys, ${expected.tensors.length} tensors`);
