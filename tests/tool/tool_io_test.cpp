// SPDX-License-Identifier: Apache-2.0
// The tool's readers and writer on hand-made bytes: valid files, and each
// malformation named by the error it must raise.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "file.hpp"
#include "npy.hpp"
#include "safetensors.hpp"

#define BLOCKQ_TOOL_PATH ""
#include "files.hpp"

namespace {

using namespace blockq_tool;
using tool_test::raw_file;
using tool_test::raw_tensor;

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string file_of(const std::string& header, const std::string& data) { return raw_file(header.size(), header, data); }

// The message of the error parse throws, or "" when it parses.
template <class Parse>
std::string error_of(Parse&& parse) {
  try {
    parse();
  } catch (const error& e) {
    return e.what();
  }
  return "";
}
std::string st_error(const std::string& file) {
  return error_of([&] { parse_safetensors(bytes_of(file)); });
}
std::string npy_error(const std::string& file) {
  return error_of([&] { parse_npy(bytes_of(file)); });
}

TEST(Safetensors, ParsesTensorsMetadataAndOffsets) {
  const std::vector<raw_tensor> ts{{"b", "F16", {2}, {1, 2, 3, 4}}, {"a", "U8", {2, 3}, {1, 2, 3, 4, 5, 6}},
                                   {"empty", "F32", {0, 4}, {}}};
  const std::string f = file_of(tool_test::header_json(ts, R"({"format":"pt","x":"y"})") + "   ", tool_test::data_of(ts));
  const auto c = parse_safetensors(bytes_of(f));
  ASSERT_EQ(c.metadata.size(), 2u);
  EXPECT_EQ(c.metadata[0], (std::pair<std::string, std::string>{"format", "pt"}));
  ASSERT_EQ(c.tensors.size(), 3u);
  // In the order of the data.
  EXPECT_EQ(c.tensors[0].name, "b");
  EXPECT_EQ(c.tensors[0].type, dtype::F16);
  EXPECT_EQ(c.tensors[0].shape, (shape_t{2}));
  EXPECT_EQ(c.tensors[0].bytes.size(), 4u);
  EXPECT_EQ(c.tensors[0].bytes[3], 4);
  EXPECT_EQ(c.tensors[1].name, "a");
  EXPECT_EQ(c.tensors[1].bytes[0], 1);
  EXPECT_EQ(c.tensors[1].bytes[5], 6);
  EXPECT_EQ(c.tensors[2].numel(), 0u);
}

TEST(Safetensors, RejectsEachMalformation) {
  const std::string ok_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string data8(8, '\0');
  EXPECT_EQ(st_error(file_of(ok_header, data8)), "");
  EXPECT_NE(st_error("").find("too short"), std::string::npos);
  EXPECT_NE(st_error(std::string(7, '\0')).find("too short"), std::string::npos);
  EXPECT_NE(st_error(raw_file(1000, ok_header, data8)).find("runs past the end of the file"), std::string::npos);
  EXPECT_NE(st_error(raw_file(std::uint64_t{1} << 62, ok_header, data8)).find("exceeds the limit"), std::string::npos);
  EXPECT_NE(st_error(file_of("{\"w\":", "")).find("malformed JSON header"), std::string::npos);
  EXPECT_NE(st_error(file_of("[1,2]", "")).find("not a JSON object"), std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data8))
                .find("duplicate key 'w'"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", data8)).find("unknown dtype 'Q7'"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8)).find("needs 12 bytes"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8)).find("non-negative"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", data8)).find("non-negative"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", data8)).find("run past the end"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", data8)).find("end before they begin"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", data8))
                .find("overflows"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})", data8))
                .find("overflows"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})", data8))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8)).find("gap"), std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data8)).find("after the last tensor"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"__metadata__":{"a":1}})", "")).find("not a string"), std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[[[2]]],"data_offsets":[0,8]}})", data8)).find("nested deeper"),
            std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[2]}})", data8)).find("data_offsets"), std::string::npos);
  EXPECT_NE(st_error(file_of(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551616]}})", data8))
                .find("data_offsets"),
            std::string::npos);
  // Deep nesting is refused without recursion.
  EXPECT_NE(st_error(file_of(std::string(100000, '['), "")).find("nested deeper"), std::string::npos);
}

TEST(Safetensors, HeaderIsPaddedAndLaidOutInOrder) {
  const std::vector<tensor_spec> specs{{"w_blocks", dtype::U8, {2, 1, 16}}, {"w_scales", dtype::U8, {2, 1}},
                                       {"s", dtype::F32, {}}};
  const std::string h = safetensors_header(specs, {{"k", "v"}});
  const std::string json =
      R"({"__metadata__":{"k":"v"},"w_blocks":{"dtype":"U8","shape":[2,1,16],"data_offsets":[0,32]},)"
      R"("w_scales":{"dtype":"U8","shape":[2,1],"data_offsets":[32,34]},"s":{"dtype":"F32","shape":[],"data_offsets":[34,38]}})";
  ASSERT_EQ(h.size() % 8, 0u);
  std::uint64_t n = 0;
  std::memcpy(&n, h.data(), 8);
  EXPECT_EQ(n, h.size() - 8);
  EXPECT_EQ(h.substr(8, json.size()), json);
  EXPECT_EQ(h.substr(8 + json.size()), std::string(h.size() - 8 - json.size(), ' '));
  // And it reads back.
  const auto c = parse_safetensors(bytes_of(h + std::string(38, '\0')));
  ASSERT_EQ(c.tensors.size(), 3u);
  EXPECT_EQ(c.tensors[2].shape, shape_t{});
  EXPECT_THROW(safetensors_header(std::vector<tensor_spec>{{"a", dtype::U8, {1}}, {"a", dtype::U8, {1}}}, {}), error);
}

std::string npy_file(const std::string& dict, const std::string& data, int major = 1) {
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  if (major == 1) {
    out += static_cast<char>(dict.size() & 0xFF);
    out += static_cast<char>(dict.size() >> 8);
  } else {
    for (int k = 0; k < 4; ++k) out += static_cast<char>((dict.size() >> (8 * k)) & 0xFF);
  }
  return out + dict + data;
}

TEST(Npy, ParsesVersionsOrdersAndByteOrders) {
  const float v[6] = {1, 2, 3, 4, 5, 6};
  const std::string c_data(reinterpret_cast<const char*>(v), sizeof v);
  auto a = parse_npy(bytes_of(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", c_data)));
  EXPECT_EQ(a.type, dtype::F32);
  EXPECT_EQ(a.shape, (shape_t{2, 3}));
  EXPECT_EQ(std::string(a.bytes.begin(), a.bytes.end()), c_data);
  // Version 2, double quotes, Python 2 longs.
  a = parse_npy(bytes_of(npy_file("{\"descr\": \"<f4\", \"shape\": (2L, 3L), \"fortran_order\": False}", c_data, 2)));
  EXPECT_EQ(a.shape, (shape_t{2, 3}));
  // Fortran order: column-major [[1,2,3],[4,5,6]] is 1,4,2,5,3,6.
  const float f[6] = {1, 4, 2, 5, 3, 6};
  a = parse_npy(bytes_of(npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                                  std::string(reinterpret_cast<const char*>(f), sizeof f))));
  EXPECT_EQ(std::string(a.bytes.begin(), a.bytes.end()), c_data);
  // Three dimensions in Fortran order: element (i, j, k) at i + 2 j + 4 k.
  std::vector<float> f3(2 * 2 * 3), c3(12);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) {
        const float val = static_cast<float>(100 * i + 10 * j + k);
        f3[static_cast<std::size_t>(i + 2 * j + 4 * k)] = val;
        c3[static_cast<std::size_t>(i * 6 + j * 3 + k)] = val;
      }
  a = parse_npy(bytes_of(npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2, 3), }",
                                  std::string(reinterpret_cast<const char*>(f3.data()), 48))));
  EXPECT_EQ(0, std::memcmp(a.bytes.data(), c3.data(), 48));
  // Big-endian float16 1.0 is 3C 00.
  a = parse_npy(bytes_of(npy_file("{'descr': '>f2', 'fortran_order': False, 'shape': (1,), }", std::string("\x3C\x00", 2))));
  EXPECT_EQ(a.type, dtype::F16);
  EXPECT_EQ(a.bytes, (std::vector<std::uint8_t>{0x00, 0x3C}));
  // A scalar.
  a = parse_npy(bytes_of(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", c_data.substr(0, 4))));
  EXPECT_TRUE(a.shape.empty());
}

TEST(Npy, RejectsEachMalformation) {
  const std::string d8(8, '\0');
  const std::string good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  EXPECT_EQ(npy_error(npy_file(good, d8)), "");
  EXPECT_NE(npy_error("hello").find("not a .npy file"), std::string::npos);
  EXPECT_NE(npy_error(std::string("\x93NUMPY\x01", 7)).find("truncated"), std::string::npos);
  EXPECT_NE(npy_error(npy_file(good, d8, 9)).find("unsupported .npy format version 9"), std::string::npos);
  EXPECT_NE(npy_error(npy_file(good, d8).substr(0, 30)).find("runs past the end"), std::string::npos);
  EXPECT_NE(npy_error(npy_file(good, d8.substr(0, 5))).find("truncated"), std::string::npos);
  EXPECT_NE(npy_error(npy_file(good, d8 + "x")).find("needs 8 bytes"), std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", d8)).find("'<f8' is not supported"),
            std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", d8)).find("structured"),
            std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': '<f4', 'shape': (2,), }", d8)).find("needs the keys"), std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", d8)).find("unexpected key"),
            std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", d8)).find("non-negative"),
            std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", d8))
                .find("too large"),
            std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", d8))
                .find("overflows"),
            std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", d8)).find("True or False"),
            std::string::npos);
  EXPECT_NE(npy_error(npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", d8)).find("expected"),
            std::string::npos);
  // A header length beyond the limit (version 2 has 32-bit lengths).
  std::string huge("\x93NUMPY\x02\x00\xFF\xFF\xFF\x7F", 12);
  EXPECT_NE(npy_error(huge).find("exceeds the limit"), std::string::npos);
}

}  // namespace

// ------------------------------------------------------------------ files

namespace {

TEST(OutputFolder, AppearsWholeAtCommitOrNotAtAll) {
  tool_test::temp_dir dir;
  const std::string out = (dir / "model").string();
  // Writes two files into a new folder, then commits the folder or leaves it uncommitted.
  const auto write_folder = [&](bool commit) {
    output_folder f(out);
    output_file a(f.file("a.safetensors"));
    a.write("abc", 3);
    a.commit();
    output_file b(f.file("sub/b.json"));
    b.write("{}", 2);
    b.commit();
    EXPECT_FALSE(std::filesystem::exists(out));  // not before commit
    if (commit) f.commit();
  };
  write_folder(false);  // destroyed without commit: nothing is left
  EXPECT_EQ(dir.entries(), std::vector<std::string>{});
  write_folder(true);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model"});
  EXPECT_EQ(tool_test::read_bytes(dir / "model/a.safetensors"), "abc");
  EXPECT_EQ(tool_test::read_bytes(dir / "model/sub/b.json"), "{}");
  // An existing output, names that leave the folder.
  EXPECT_NE(error_of([&] { output_folder f(out); }).find("exists"), std::string::npos);
  output_folder f((dir / "other").string());
  EXPECT_NE(error_of([&] { f.file("../x"); }).find("invalid output file name"), std::string::npos);
  EXPECT_NE(error_of([&] { f.file("/tmp/x"); }).find("invalid output file name"), std::string::npos);
}

TEST(InputFile, ReadsPastTheEndAreErrors) {
  tool_test::temp_dir dir;
  tool_test::write_bytes(dir / "f", "0123456789");
  const input_file f((dir / "f").string());
  std::vector<std::uint8_t> b(4);
  f.read(6, b);
  EXPECT_EQ(std::string(b.begin(), b.end()), "6789");
  // Shrunk after it was opened: an error naming the file, not a crash.
  std::filesystem::resize_file(dir / "f", 5);
  EXPECT_NE(error_of([&] { f.read(6, b); }).find("truncated"), std::string::npos);
}

}  // namespace
