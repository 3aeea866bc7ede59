// SPDX-License-Identifier: Apache-2.0
// The blockq side of the @huggingface/gguf check (check.mjs):
//   gguf_expect write OUT.gguf OUT.json   writes a GGUF with blockq's writer
//       (every value type, nested arrays, F32/F16/BF16/Q8_0 tensors of 1-3
//       dims, alignment 64) and, computed here on its own, what the file
//       must hold: keys, types, values, tensor infos, offsets, data start;
//   gguf_expect dump IN.gguf OUT.json     what blockq's reader sees in a file
//       (e.g. one written by `blockq quantize`), in the same form.
// uint64/int64 values and tensor dims and offsets are written as decimal
// strings (JavaScript reads them as BigInt).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blockq/formats/half.hpp"
#include "gguf.hpp"

namespace {

using namespace blockq_tool;
using json = nlohmann::ordered_json;

std::string bytes_of(const void* p, std::size_t n) { return std::string(static_cast<const char*>(p), n); }
template <class T>
std::string le(T v) {
  return bytes_of(&v, sizeof v);
}
std::string gstr(const std::string& s) { return le<std::uint64_t>(s.size()) + s; }

json dump(const gguf::file& f) {
  json kv = json::array();
  for (const gguf::kv& p : f.kvs) {
    json e{{"key", p.key}, {"type", static_cast<int>(p.value.type)}};
    if (p.value.type == gguf::value_type::array) e["sub"] = static_cast<int>(p.value.elem);
    e["value"] = json::parse(gguf::describe(p.value, true));
    kv.push_back(e);
  }
  json ts = json::array();
  for (const gguf::tensor_info& t : f.tensors) {
    json ne = json::array();
    for (auto d : t.ne) ne.push_back(std::to_string(d));
    ts.push_back({{"name", t.name}, {"type", t.type}, {"ne", ne}, {"offset", std::to_string(t.offset)}});
  }
  return {{"version", f.version}, {"kv", kv}, {"tensors", ts}, {"data_offset", std::to_string(f.data_offset)}};
}

struct planned {
  std::string name;
  std::uint32_t type;
  std::vector<std::uint64_t> ne;
  std::size_t elem_bytes_num, elem_bytes_den, block;  // bytes per block / elements per block
};

int write(const char* out_path, const char* json_path) {
  constexpr std::uint32_t align = 64;
  gguf::file f;
  f.alignment = align;
  json kv = json::array();
  std::uint64_t header = 4 + 4 + 8 + 8;
  auto add = [&](const std::string& key, gguf::value_type t, const std::string& payload, json value,
                 gguf::value_type elem = gguf::value_type::u8, std::uint64_t count = 1) {
    gguf::value v;
    v.type = t;
    v.elem = elem;
    v.count = count;
    v.payload = payload;
    f.kvs.push_back({key, v});
    json e{{"key", key}, {"type", static_cast<int>(t)}};
    if (t == gguf::value_type::array) e["sub"] = static_cast<int>(elem);
    e["value"] = std::move(value);
    kv.push_back(e);
    header += 8 + key.size() + 4 + (t == gguf::value_type::array ? 12 : 0) + payload.size();
  };
  using vt = gguf::value_type;
  add("general.architecture", vt::string, gstr("llama"), "llama");
  add("general.name", vt::string, gstr("gguf \xc3\xa9 test"), "gguf \xc3\xa9 test");
  add("general.alignment", vt::u32, le<std::uint32_t>(align), align);
  add("general.file_type", vt::u32, le<std::uint32_t>(1), 1);
  add("t.u8", vt::u8, le<std::uint8_t>(250), 250);
  add("t.i8", vt::i8, le<std::int8_t>(-100), -100);
  add("t.u16", vt::u16, le<std::uint16_t>(65535), 65535);
  add("t.i16", vt::i16, le<std::int16_t>(-32768), -32768);
  add("t.i32", vt::i32, le<std::int32_t>(-7), -7);
  add("t.f32", vt::f32, le<float>(1e-5f), static_cast<double>(1e-5f));
  add("t.bool", vt::boolean, le<std::uint8_t>(0), false);
  add("t.u64", vt::u64, le<std::uint64_t>(18446744073709551615ull), "18446744073709551615");
  add("t.i64", vt::i64, le<std::int64_t>(-9223372036854775807ll), "-9223372036854775807");
  add("t.f64", vt::f64, le<double>(3.141592653589793), 3.141592653589793);
  add("t.empty_string", vt::string, gstr(""), "");
  add("tokenizer.ggml.tokens", vt::array, gstr("<s>") + gstr("</s>") + gstr("a b"), json::array({"<s>", "</s>", "a b"}), vt::string, 3);
  add("tokenizer.ggml.scores", vt::array, le<float>(0.5f) + le<float>(-1.25f), json::array({0.5, -1.25}), vt::f32, 2);
  add("t.bools", vt::array, le<std::uint8_t>(1) + le<std::uint8_t>(0), json::array({true, false}), vt::boolean, 2);
  add("t.u64s", vt::array, le<std::uint64_t>(1) + le<std::uint64_t>(1ull << 60), json::array({"1", "1152921504606846976"}), vt::u64, 2);
  add("t.nested", vt::array,
      le<std::uint32_t>(5) + le<std::uint64_t>(2) + le<std::int32_t>(1) + le<std::int32_t>(-2) + le<std::uint32_t>(8) +
          le<std::uint64_t>(1) + gstr("x"),
      json::array({json::array({1, -2}), json::array({"x"})}), vt::array, 2);
  add("t.empty_array", vt::array, "", json::array(), vt::i32, 0);

  // Tensors: ne innermost first; bytes = elements / block x block bytes.
  const std::vector<planned> plan{
      {"token_embd.weight", gguf::type_f16, {64, 16}, 2, 1, 1},
      {"blk.0.attn_norm.weight", gguf::type_f32, {64}, 4, 1, 1},
      {"blk.0.attn_q.weight", gguf::type_f16, {64, 64}, 2, 1, 1},
      {"blk.0.attn_k.weight", gguf::type_bf16, {64, 8}, 2, 1, 1},
      {"blk.0.ffn_gate_inp.weight", gguf::type_f32, {64, 2}, 4, 1, 1},
      {"blk.0.ffn_up_exps.weight", gguf::type_f16, {64, 32, 2}, 2, 1, 1},
      {"blk.0.odd.weight", gguf::type_f16, {40, 2}, 2, 1, 1},
      {"blk.0.extra.weight", gguf::type_q8_0, {32, 3}, 34, 1, 32},
      {"output_norm.weight", gguf::type_f32, {64}, 4, 1, 1},
      {"output.weight", gguf::type_f16, {64, 16}, 2, 1, 1},
  };
  std::mt19937 rng(20260101);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<std::string> data;
  json ts = json::array();
  std::uint64_t offset = 0;
  for (const planned& p : plan) {
    std::uint64_t n = 1;
    for (auto d : p.ne) n *= d;
    const std::uint64_t bytes = n / p.block * p.elem_bytes_num;
    std::string b(bytes, '\0');
    for (std::uint64_t i = 0; i < n / p.block; ++i) {
      const float x = normal(rng);
      if (p.type == gguf::type_f32) {
        std::memcpy(b.data() + 4 * i, &x, 4);
      } else if (p.type == gguf::type_f16) {
        const auto h = blockq::float16::from_float(x).bits;
        std::memcpy(b.data() + 2 * i, &h, 2);
      } else if (p.type == gguf::type_bf16) {
        const auto h = blockq::bfloat16::from_float(x).bits;
        std::memcpy(b.data() + 2 * i, &h, 2);
      } else {
        for (std::size_t j = 0; j < 34; ++j) b[i * 34 + j] = static_cast<char>(rng());
      }
    }
    data.push_back(b);
    f.tensors.push_back({p.name, p.type, p.ne, 0});
    json ne = json::array();
    for (auto d : p.ne) ne.push_back(std::to_string(d));
    ts.push_back({{"name", p.name}, {"type", p.type}, {"ne", ne}, {"offset", std::to_string(offset)}});
    offset = (offset + bytes + align - 1) / align * align;
    header += 8 + p.name.size() + 4 + 8 * p.ne.size() + 4 + 8;
  }
  const std::uint64_t data_offset = (header + align - 1) / align * align;
  const std::string h = gguf::header_bytes(f);
  std::ofstream out(out_path, std::ios::binary);
  out << h;
  for (const std::string& b : data) {
    out << b;
    out << std::string((align - b.size() % align) % align, '\0');
  }
  out.close();
  const json expected{{"version", 3}, {"kv", kv}, {"tensors", ts}, {"data_offset", std::to_string(data_offset)}};
  std::ofstream(json_path) << expected.dump(1) << "\n";
  // The reader of blockq must agree too.
  const gguf::file again = gguf::parse(gguf::file_source(out_path));
  if (dump(again) != expected) {
    std::fprintf(stderr, "gguf_expect: blockq's own reader disagrees:\n%s\n", dump(again).dump(1).c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 4 && std::string(argv[1]) == "write") return write(argv[2], argv[3]);
    if (argc == 4 && std::string(argv[1]) == "dump") {
      std::ofstream(argv[3]) << dump(gguf::parse(gguf::file_source(argv[2]))).dump(1) << "\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gguf_expect: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: gguf_expect write OUT.gguf OUT.json | dump IN.gguf OUT.json\n");
  return 2;
}
