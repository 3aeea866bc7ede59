// SPDX-License-Identifier: Apache-2.0
// The tool's GGUF reader and writer and its importance-matrix reader, on
// bytes written by hand here (a GGUF encoder transcribed independently from
// ggml's docs/gguf.md): valid files, a round trip through the writer, and each
// malformation named by the error it must raise.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gguf.hpp"
#include "imatrix.hpp"

namespace {

using namespace blockq_tool;

// Little-endian bytes, appended field by field.
struct bytes_out {
  std::string b;
  template <class T>
  bytes_out& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  bytes_out& str(const std::string& s) {
    put<std::uint64_t>(s.size());
    b += s;
    return *this;
  }
  bytes_out& zeros(std::size_t n) {
    b.append(n, '\0');
    return *this;
  }
  void pad_to(std::size_t a) { b.resize((b.size() + a - 1) / a * a, '\0'); }
};

struct hand_tensor {
  std::string name;
  std::uint32_t type;
  std::vector<std::uint64_t> ne;
  std::string data;          // the tensor's bytes
  std::uint64_t offset = 0;  // set by hand_file unless given
};

// A GGUF file: header, kv bytes (already encoded), tensor infos, data. Offsets
// are laid out back to back with padding unless explicit_offsets.
std::string hand_file(const std::string& kv_bytes, std::uint64_t n_kv, std::vector<hand_tensor> ts, std::size_t align = 32,
                      bool explicit_offsets = false, std::uint32_t version = 3) {
  bytes_out o;
  o.b = "GGUF";
  o.put<std::uint32_t>(version).put<std::uint64_t>(ts.size()).put<std::uint64_t>(n_kv);
  o.b += kv_bytes;
  std::uint64_t at = 0;
  for (hand_tensor& t : ts) {
    if (!explicit_offsets) {
      t.offset = at;
      at = (at + t.data.size() + align - 1) / align * align;
    }
    o.str(t.name).put<std::uint32_t>(static_cast<std::uint32_t>(t.ne.size()));
    for (auto d : t.ne) o.put<std::uint64_t>(d);
    o.put<std::uint32_t>(t.type).put<std::uint64_t>(t.offset);
  }
  o.pad_to(align);
  const std::size_t data_start = o.b.size();
  for (const hand_tensor& t : ts) {
    if (o.b.size() < data_start + t.offset) o.b.resize(data_start + t.offset, '\0');
    o.b.replace(data_start + t.offset, std::min(t.data.size(), o.b.size() - data_start - t.offset), t.data);
    if (o.b.size() < data_start + t.offset + t.data.size()) o.b.resize(data_start + t.offset + t.data.size());
  }
  o.pad_to(align);
  return o.b;
}

std::string kv_u32(const std::string& k, std::uint32_t v) { return bytes_out{}.str(k).put<std::uint32_t>(4).put(v).b; }
std::string kv_str(const std::string& k, const std::string& v) { return bytes_out{}.str(k).put<std::uint32_t>(8).str(v).b; }

std::string f32_data(const std::vector<float>& x) { return std::string(reinterpret_cast<const char*>(x.data()), x.size() * 4); }

gguf::file parse_bytes(const std::string& s) {
  return gguf::parse(gguf::buffer_source({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}));
}

// The message of the error f throws, or "" when it returns.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const error& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(const std::string& s) {
  return error_of([&] { parse_bytes(s); });
}

// Every value type once, an array of each kind and an array of arrays.
std::string all_kvs(std::uint64_t& n) {
  bytes_out o;
  o.str("u8").put<std::uint32_t>(0).put<std::uint8_t>(200);
  o.str("i8").put<std::uint32_t>(1).put<std::int8_t>(-5);
  o.str("u16").put<std::uint32_t>(2).put<std::uint16_t>(60000);
  o.str("i16").put<std::uint32_t>(3).put<std::int16_t>(-30000);
  o.str("u32").put<std::uint32_t>(4).put<std::uint32_t>(4000000000u);
  o.str("i32").put<std::uint32_t>(5).put<std::int32_t>(-2000000000);
  o.str("f32").put<std::uint32_t>(6).put<float>(0.1f);
  o.str("bool").put<std::uint32_t>(7).put<std::uint8_t>(1);
  o.str("str").put<std::uint32_t>(8).str("h\xc3\xa9llo");
  o.str("u64").put<std::uint32_t>(10).put<std::uint64_t>(~std::uint64_t{0});
  o.str("i64").put<std::uint32_t>(11).put<std::int64_t>(-(std::int64_t{1} << 62));
  o.str("f64").put<std::uint32_t>(12).put<double>(-2.5e300);
  o.str("arr_i16").put<std::uint32_t>(9).put<std::uint32_t>(3).put<std::uint64_t>(3).put<std::int16_t>(1).put<std::int16_t>(-2).put<std::int16_t>(3);
  o.str("arr_str").put<std::uint32_t>(9).put<std::uint32_t>(8).put<std::uint64_t>(2).str("a").str("");
  o.str("arr_arr").put<std::uint32_t>(9).put<std::uint32_t>(9).put<std::uint64_t>(2);
  o.put<std::uint32_t>(4).put<std::uint64_t>(1).put<std::uint32_t>(7);
  o.put<std::uint32_t>(8).put<std::uint64_t>(1).str("x");
  o.str("empty").put<std::uint32_t>(9).put<std::uint32_t>(6).put<std::uint64_t>(0);
  n = 16;
  return o.b;
}

std::vector<hand_tensor> some_tensors() {
  // Q4_0: 2 rows of 32 = 2 blocks of 18 bytes; MXFP4: 1 block of 17 bytes; a 3-D F16.
  std::string q4(36, '\0'), mx(17, '\0'), h(2 * 2 * 3 * 2, '\0');
  for (std::size_t i = 0; i < q4.size(); ++i) q4[i] = static_cast<char>(i * 7);
  for (std::size_t i = 0; i < mx.size(); ++i) mx[i] = static_cast<char>(100 + i);
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<char>(i);
  return {{"w.q4", gguf::type_q4_0, {32, 2}, q4},
          {"norm", gguf::type_f32, {3}, f32_data({1.0f, -2.0f, 0.5f})},
          {"mx", gguf::type_mxfp4, {32}, mx},
          {"experts", gguf::type_f16, {2, 3, 2}, h}};
}

TEST(Gguf, ParsesEveryValueTypeAndTensorInfo) {
  std::uint64_t n = 0;
  const std::string kvs = all_kvs(n);
  const std::string s = hand_file(kvs, n, some_tensors());
  const gguf::file f = parse_bytes(s);
  EXPECT_EQ(f.version, 3u);
  EXPECT_EQ(f.alignment, 32u);
  ASSERT_EQ(f.kvs.size(), 16u);
  EXPECT_EQ(f.kvs[0].key, "u8");
  EXPECT_EQ(f.kvs[0].value.as_uint(), 200u);
  EXPECT_EQ(f.kvs[2].value.as_uint(), 60000u);
  EXPECT_EQ(f.kvs[4].value.as_uint(), 4000000000u);
  EXPECT_EQ(f.kvs[8].value.as_string(), "h\xc3\xa9llo");
  EXPECT_EQ(f.kvs[9].value.as_uint(), ~std::uint64_t{0});
  EXPECT_THROW((void)f.kvs[1].value.as_uint(), error);  // -5
  EXPECT_EQ(gguf::describe(f.kvs[6].value), "0.10000000149011612");
  EXPECT_EQ(gguf::describe(f.kvs[12].value), "[1,-2,3]");
  EXPECT_EQ(f.kvs[13].value.as_strings(), (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(gguf::describe(f.kvs[14].value), "[[7],[\"x\"]]");
  EXPECT_EQ(gguf::describe(f.kvs[15].value), "[]");
  ASSERT_EQ(f.tensors.size(), 4u);
  EXPECT_EQ(f.tensors[0].name, "w.q4");
  EXPECT_EQ(f.tensors[0].nbytes(), 36u);
  EXPECT_EQ(f.tensors[0].shape(), (shape_t{2, 32}));
  EXPECT_EQ(f.tensors[1].offset, 64u);  // 36 padded to 32
  EXPECT_EQ(f.tensors[2].offset, 96u);
  EXPECT_EQ(f.tensors[3].offset, 128u);
  EXPECT_EQ(f.tensors[3].ne, (std::vector<std::uint64_t>{2, 3, 2}));
  EXPECT_EQ(f.data_offset % 32, 0u);
  const gguf::buffer_source src({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
  const auto norm = gguf::read_tensor(src, f, f.tensors[1]);
  float x[3];
  std::memcpy(x, norm.data(), 12);
  EXPECT_EQ(x[1], -2.0f);
  const auto mx = gguf::read_tensor(src, f, f.tensors[2]);
  EXPECT_EQ(mx[16], 116);
}

TEST(Gguf, WriterReproducesAHandMadeFileByteForByte) {
  std::uint64_t n = 0;
  const std::string kvs = all_kvs(n);
  const std::string s = hand_file(kvs, n, some_tensors());
  gguf::file f = parse_bytes(s);
  const gguf::buffer_source src({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
  std::string out = gguf::header_bytes(f);
  for (const auto& t : f.tensors) {
    const auto b = gguf::read_tensor(src, f, t);
    out.append(reinterpret_cast<const char*>(b.data()), b.size());
    out.resize(gguf::padded(out.size(), f.alignment), '\0');
  }
  EXPECT_EQ(out, s);
}

TEST(Gguf, WriterKeepsAlignmentAndPadsEachTensor) {
  const std::string kvs = kv_str("general.architecture", "llama") + kv_u32("general.alignment", 64);
  const std::string s = hand_file(kvs, 2, some_tensors(), 64);
  gguf::file f = parse_bytes(s);
  EXPECT_EQ(f.alignment, 64u);
  EXPECT_EQ(f.tensors[1].offset, 64u);
  EXPECT_EQ(f.tensors[2].offset, 128u);
  f.set("blockq.version", gguf::value::of_string("x"));
  f.tensors[0].type = gguf::type_q8_0;  // 2 blocks of 34 bytes: the offsets move
  const std::string h = gguf::header_bytes(f);
  EXPECT_EQ(h.size() % 64, 0u);
  EXPECT_EQ(f.data_offset, h.size());
  EXPECT_EQ(f.tensors[1].offset, 128u);
  EXPECT_EQ(f.kvs.back().key, "blockq.version");
  EXPECT_EQ(f.kvs[1].key, "general.alignment");
  // A non-default alignment without the key gets the key.
  gguf::file g;
  g.alignment = 128;
  gguf::header_bytes(g);
  ASSERT_NE(g.find("general.alignment"), nullptr);
  EXPECT_EQ(g.find("general.alignment")->value.as_uint(), 128u);
}

TEST(Gguf, AcceptsVersion2AndTypesItOnlyCopies) {
  const std::string q6k(210, '\x11');
  const std::string s = hand_file("", 0, {{"k", 14, {256}, q6k}}, 32, false, 2);
  const gguf::file f = parse_bytes(s);
  EXPECT_EQ(f.version, 2u);
  EXPECT_EQ(f.tensors[0].nbytes(), 210u);
  EXPECT_EQ(gguf::find_type(14)->name, "Q6_K");
  EXPECT_EQ(gguf::find_type("mxfp4")->id, 39u);
  EXPECT_EQ(gguf::find_type(39)->type_size, 17u);
  EXPECT_EQ(gguf::find_type(8)->type_size, 34u);
  EXPECT_FALSE(gguf::find_type(4));
  EXPECT_FALSE(gguf::find_type(43));
}

// Each malformation and the words of its error.
TEST(Gguf, RejectsMalformedFiles) {
  const std::vector<hand_tensor> one{{"t", gguf::type_f32, {2}, f32_data({1, 2})}};
  const std::string good = hand_file("", 0, one);
  ASSERT_EQ(parse_error(good), "");
  EXPECT_NE(parse_error("GGU").find("past the end"), std::string::npos);
  EXPECT_NE(parse_error("GGML" + good.substr(4)).find("not a GGUF file"), std::string::npos);
  {
    std::string s = good;
    s[4] = 1;
    EXPECT_NE(parse_error(s).find("version 1"), std::string::npos);
    s[4] = 0, s[7] = 3;  // 0x03000000: a big-endian 3
    EXPECT_NE(parse_error(s).find("big-endian"), std::string::npos);
    s[7] = 0, s[4] = 4;
    EXPECT_NE(parse_error(s).find("unsupported GGUF version 4"), std::string::npos);
  }
  {
    std::string s = good;
    const std::uint64_t huge = std::uint64_t{1} << 60;
    std::memcpy(s.data() + 8, &huge, 8);
    EXPECT_NE(parse_error(s).find("tensor count"), std::string::npos);
    std::memcpy(s.data() + 8, "\x01\0\0\0\0\0\0\0", 8);
    std::memcpy(s.data() + 16, &huge, 8);
    EXPECT_NE(parse_error(s).find("key/value count"), std::string::npos);
  }
  EXPECT_NE(parse_error(hand_file(kv_u32("a", 1) + kv_u32("a", 2), 2, one)).find("duplicate key 'a'"), std::string::npos);
  EXPECT_NE(parse_error(hand_file(kv_u32("", 1), 1, one)).find("empty"), std::string::npos);
  EXPECT_NE(parse_error(hand_file(bytes_out{}.str("k").put<std::uint32_t>(13).b, 1, one)).find("unknown value type 13"),
            std::string::npos);
  EXPECT_NE(parse_error(hand_file(bytes_out{}.str("k").put<std::uint32_t>(9).put<std::uint32_t>(77).put<std::uint64_t>(0).b, 1, one))
                .find("unknown array element type 77"),
            std::string::npos);
  EXPECT_NE(parse_error(hand_file(bytes_out{}.str("k").put<std::uint32_t>(8).put<std::uint64_t>(std::uint64_t{1} << 40).b, 1, one))
                .find("over the limit"),
            std::string::npos);
  EXPECT_NE(parse_error(hand_file(bytes_out{}.str("k").put<std::uint32_t>(8).put<std::uint64_t>(1000).b, 1, one)).find("past the end"),
            std::string::npos);
  {  // an array of 2^61 uint64: the count times the size overflows
    const std::string k = bytes_out{}.str("k").put<std::uint32_t>(9).put<std::uint32_t>(10).put<std::uint64_t>(std::uint64_t{1} << 61).b;
    EXPECT_NE(parse_error(hand_file(k, 1, one)).find("runs past the end"), std::string::npos);
  }
  {  // arrays nested 9 deep
    bytes_out o;
    o.str("k").put<std::uint32_t>(9);
    for (int i = 0; i < 9; ++i) o.put<std::uint32_t>(9).put<std::uint64_t>(1);
    o.put<std::uint32_t>(0).put<std::uint64_t>(0);
    EXPECT_NE(parse_error(hand_file(o.b, 1, one)).find("nested deeper"), std::string::npos);
  }
  EXPECT_NE(parse_error(hand_file(kv_u32("general.alignment", 48), 1, one, 48)).find("not a power of two"), std::string::npos);
  EXPECT_NE(parse_error(hand_file(kv_str("general.alignment", "x"), 1, one)).find("must be a uint32"), std::string::npos);
  EXPECT_NE(parse_error(hand_file("", 0, {{"t", 0, {1, 1, 1, 1, 1}, f32_data({1})}})).find("5 dimensions"), std::string::npos);
  EXPECT_NE(parse_error(hand_file("", 0, {{"t", 0, {}, ""}})).find("0 dimensions"), std::string::npos);
  EXPECT_NE(parse_error(hand_file("", 0, {{"t", 4, {32}, std::string(18, 0)}})).find("unknown ggml type 4"), std::string::npos);
  EXPECT_NE(parse_error(hand_file("", 0, {{"t", 99, {32}, ""}})).find("unknown ggml type 99"), std::string::npos);
  EXPECT_NE(parse_error(hand_file("", 0, {{"t", gguf::type_q4_0, {40}, std::string(18, 0)}})).find("not a multiple of Q4_0's block of 32"),
            std::string::npos);
  EXPECT_NE(parse_error(hand_file("", 0, {{"t", 0, {std::uint64_t{1} << 32, std::uint64_t{1} << 32}, ""}})).find("overflows"),
            std::string::npos);
  EXPECT_NE(parse_error(hand_file("", 0, {{"t", 0, {2}, f32_data({1, 2})}, {"t", 0, {2}, f32_data({1, 2})}})).find("duplicate tensor 't'"),
            std::string::npos);
  EXPECT_NE(parse_error(hand_file("", 0, {{std::string(64, 'n'), 0, {2}, f32_data({1, 2})}})).find("ggml's limit of 63"),
            std::string::npos);
  {
    std::vector<hand_tensor> ts{{"a", 0, {16}, std::string(64, 1), 0}, {"b", 0, {2}, f32_data({1, 2}), 16}};
    EXPECT_NE(parse_error(hand_file("", 0, ts, 32, true)).find("not a multiple of the alignment"), std::string::npos);
    ts[1].offset = 32;
    EXPECT_NE(parse_error(hand_file("", 0, ts, 32, true)).find("overlap"), std::string::npos);
    ts[1].offset = 64;
    EXPECT_EQ(parse_error(hand_file("", 0, ts, 32, true)), "");
    ts[1].offset = 4096;
    EXPECT_NE(parse_error(hand_file("", 0, ts, 32, true).substr(0, 200)).find("past the end"), std::string::npos);
  }
  {  // truncated in the data section
    const std::string s = hand_file("", 0, {{"t", 0, {64}, std::string(256, 1)}});
    EXPECT_NE(parse_error(s.substr(0, s.size() - 10)).find("run past the end of the data section"), std::string::npos);
  }
  // Every strict prefix of a valid file is an error, never a crash.
  std::uint64_t n = 0;
  const std::string full = hand_file(all_kvs(n), n, some_tensors());
  for (std::size_t len = 0; len + 1 < full.size(); len += 3) EXPECT_NE(parse_error(full.substr(0, len)), "") << len;
}

TEST(Gguf, WriterRefusesWhatTheReaderRefuses) {
  gguf::file f;
  f.kvs.push_back({"a", gguf::value::of_u32(1)});
  f.kvs.push_back({"a", gguf::value::of_u32(2)});
  EXPECT_THROW(gguf::header_bytes(f), error);
  gguf::file g;
  g.tensors.push_back({"t", gguf::type_q4_0, {33}, 0});
  EXPECT_THROW(gguf::header_bytes(g), error);
}

// --- importance matrices -----------------------------------------------------

std::string imatrix_gguf(const std::string& name, std::uint64_t cols, const std::vector<float>& sums, const std::vector<float>& counts) {
  const std::string kvs = kv_str("general.type", "imatrix") +
                          bytes_out{}.str("imatrix.datasets").put<std::uint32_t>(9).put<std::uint32_t>(8).put<std::uint64_t>(1).str("wiki.txt").b +
                          kv_u32("imatrix.chunk_count", 7);
  return hand_file(kvs, 3,
                   {{name + ".counts", gguf::type_f32, {1, counts.size()}, f32_data(counts)},
                    {name + ".in_sum2", gguf::type_f32, {cols, sums.size() / cols}, f32_data(sums)}});
}

importance_matrix parse_im(const std::string& s) {
  return parse_imatrix(gguf::buffer_source({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}));
}

std::string err(const std::string& s) {
  return error_of([&] { parse_im(s); });
}

TEST(Imatrix, GgufWeightsAreSumsOverCountsPerExpert) {
  // Two experts of 4 columns; the second expert saw no token: weights 1 (llama-quantize's choice).
  const std::vector<float> sums{2, 4, 6, 8, 1, 1, 1, 1};
  const auto m = parse_im(imatrix_gguf("blk.0.ffn_up_exps.weight", 4, sums, {2, 0}));
  EXPECT_EQ(m.format, "gguf");
  EXPECT_EQ(m.chunks, 7u);
  EXPECT_EQ(m.datasets, (std::vector<std::string>{"wiki.txt"}));
  const auto e0 = m.columns("blk.0.ffn_up_exps.weight", 4, 0, 2);
  ASSERT_EQ(e0.size(), 4u);
  EXPECT_EQ(e0[0], 1.0f);
  EXPECT_EQ(e0[3], 4.0f);
  const auto e1 = m.columns("blk.0.ffn_up_exps.weight", 4, 1, 2);
  EXPECT_EQ(e1[2], 1.0f);
  EXPECT_TRUE(m.columns("blk.0.attn_q.weight", 4, 0, 1).empty());  // missing: the caller falls back
  EXPECT_THROW((void)m.columns("blk.0.ffn_up_exps.weight", 5, 0, 1), error);  // another model's matrix
  EXPECT_THROW((void)m.columns("blk.0.ffn_up_exps.weight", 4, 0, 3), error);
}

TEST(Imatrix, GgufRejectsInconsistentEntries) {
  EXPECT_NE(err(imatrix_gguf("w", 2, {1, 2, 3, 4}, {1})).find("counts for"), std::string::npos);
  EXPECT_NE(err(imatrix_gguf("w", 2, {1, NAN}, {1})).find("finite"), std::string::npos);
  EXPECT_NE(err(hand_file(kv_str("general.type", "model"), 1, {})).find("not an importance matrix"), std::string::npos);
  const std::string no_counts = hand_file(kv_str("general.type", "imatrix"), 1, {{"w.in_sum2", 0, {2}, f32_data({1, 2})}});
  EXPECT_NE(err(no_counts).find("no counts"), std::string::npos);
}

std::string dat_entry(const std::string& name, std::int32_t ncall, const std::vector<float>& v) {
  return bytes_out{}.put<std::int32_t>(static_cast<std::int32_t>(name.size())).b + name +
         bytes_out{}.put<std::int32_t>(ncall).put<std::int32_t>(static_cast<std::int32_t>(v.size())).b + f32_data(v);
}

TEST(Imatrix, DatValuesAreDividedByTheirCallCount) {
  // llama-imatrix stores (sum / tokens) x ncall; the weight is value / ncall.
  const std::string s = bytes_out{}.put<std::int32_t>(2).b + dat_entry("a.weight", 4, {4, 8, 12}) + dat_entry("b.weight", 0, {3, 5}) +
                        bytes_out{}.put<std::int32_t>(9).put<std::int32_t>(5).b + "d.txt";
  const auto m = parse_im(s);
  EXPECT_EQ(m.format, "dat");
  EXPECT_EQ(m.chunks, 9u);
  EXPECT_EQ(m.datasets, (std::vector<std::string>{"d.txt"}));
  const auto a = m.columns("a.weight", 3, 0, 1);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], 1.0f);
  EXPECT_EQ(a[2], 3.0f);
  EXPECT_EQ(m.columns("b.weight", 2, 0, 1)[1], 5.0f);  // ncall 0: the values as they are
  // Without the trailer too.
  EXPECT_EQ(parse_im(bytes_out{}.put<std::int32_t>(1).b + dat_entry("a", 2, {2})).columns("a", 1, 0, 1)[0], 1.0f);
}

TEST(Imatrix, DatRejectsMalformedFiles) {
  EXPECT_NE(err(bytes_out{}.put<std::int32_t>(0).b).find("entry count"), std::string::npos);
  EXPECT_NE(err(bytes_out{}.put<std::int32_t>(1000000).b + dat_entry("a", 1, {1})).find("entry count"), std::string::npos);
  EXPECT_NE(err(bytes_out{}.put<std::int32_t>(2).b + dat_entry("a", 1, {1}) + dat_entry("a", 1, {1})).find("duplicate"),
            std::string::npos);
  const std::string one = bytes_out{}.put<std::int32_t>(1).b + dat_entry("a", 1, {1, 2});
  EXPECT_NE(err(one.substr(0, one.size() - 2)).find("values"), std::string::npos);
  EXPECT_NE(err(one + "xy").find("after the end"), std::string::npos);
  EXPECT_NE(err(bytes_out{}.put<std::int32_t>(1).b + dat_entry("a", 1, {-1})).find("non-negative"), std::string::npos);
}

}  // namespace

// The seed corpus of the fuzzer, written by tools/make_test_gguf.py and a
// Python encoder of its own: every file is valid and reads as what it holds.
#ifdef BLOCKQ_GGUF_CORPUS
TEST(Gguf, ReadsFilesWrittenByThePythonEncoders) {
  const std::string dir = BLOCKQ_GGUF_CORPUS;
  {
    const gguf::file_source src(dir + "/tiny_llama.gguf");
    const gguf::file f = gguf::parse(src);
    ASSERT_NE(f.find("general.architecture"), nullptr);
    EXPECT_EQ(f.find("general.architecture")->value.as_string(), "llama");
    EXPECT_EQ(f.find("general.file_type")->value.as_uint(), 1u);
    EXPECT_EQ(f.find("tokenizer.ggml.tokens")->value.as_strings().size(), 4u);
    EXPECT_EQ(f.tensors.front().name, "token_embd.weight");
    EXPECT_EQ(f.tensors.front().ne, (std::vector<std::uint64_t>{8, 4}));
    EXPECT_EQ(f.tensors.front().type, gguf::type_f16);
    EXPECT_EQ(f.tensors.back().name, "output.weight");
    EXPECT_EQ(f.tensors[1].name, "blk.0.attn_norm.weight");
    EXPECT_EQ(f.tensors[1].type, gguf::type_f32);
    // The tensors end where the file ends, the last one padded.
    EXPECT_EQ(f.data_offset + gguf::padded(f.tensors.back().offset + f.tensors.back().nbytes(), 32), src.size());
  }
  {
    const gguf::file f = gguf::parse(gguf::file_source(dir + "/tiny_moe.gguf"));
    EXPECT_EQ(f.alignment, 64u);
    for (const auto& t : f.tensors) EXPECT_EQ(t.offset % 64, 0u) << t.name;
    const auto it = std::find_if(f.tensors.begin(), f.tensors.end(), [](const auto& t) { return t.name == "blk.0.ffn_down_exps.weight"; });
    ASSERT_NE(it, f.tensors.end());
    EXPECT_EQ(it->ne, (std::vector<std::uint64_t>{8, 8, 2}));
  }
  {
    const gguf::file f = gguf::parse(gguf::file_source(dir + "/quantized_v2.gguf"));
    EXPECT_EQ(f.version, 2u);
    EXPECT_EQ(f.alignment, 16u);
    ASSERT_EQ(f.tensors.size(), 6u);
    EXPECT_EQ(f.tensors[2].type, gguf::type_mxfp4);
    EXPECT_EQ(f.tensors[3].offset, 128u);  // Q4_0 36 bytes padded to 48, Q8_0 34 to 48, MXFP4 17 to 32
  }
  const auto g = read_imatrix(dir + "/imatrix.gguf");
  EXPECT_EQ(g.columns("w.weight", 4, 0, 2)[1], 2.0f / 3.0f);
  EXPECT_EQ(g.columns("w.weight", 4, 1, 2)[0], 1.0f);
  const auto d = read_imatrix(dir + "/imatrix.dat");
  EXPECT_EQ(d.columns("a.weight", 4, 0, 1)[3], 2.0f);
  EXPECT_EQ(d.columns("b.weight", 2, 0, 1)[0], 5.0f);
  EXPECT_EQ(d.chunks, 10u);
}
#endif
