// SPDX-License-Identifier: Apache-2.0
// Test helpers: safetensors and .npy files written by hand (independently of
// the tool's writer), temporary folders, and running the built tool.
#pragma once

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tool_test {

namespace fs = std::filesystem;

inline std::vector<std::uint8_t> float_bytes(const std::vector<float>& x) {
  std::vector<std::uint8_t> b(x.size() * 4);
  std::memcpy(b.data(), x.data(), b.size());
  return b;
}

struct raw_tensor {
  std::string name, dtype;
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> bytes;
};

inline std::string shape_json(const std::vector<std::uint64_t>& s) {
  std::string j = "[";
  for (std::size_t i = 0; i < s.size(); ++i) j += (i ? "," : "") + std::to_string(s[i]);
  return j + "]";
}

// The header JSON of tensors laid out back to back, in order.
inline std::string header_json(const std::vector<raw_tensor>& ts, const std::string& metadata_json = "") {
  std::string h = "{";
  if (!metadata_json.empty()) h += "\"__metadata__\":" + metadata_json;
  std::uint64_t at = 0;
  for (const auto& t : ts) {
    if (h.size() > 1) h += ",";
    h += "\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":" + shape_json(t.shape) + ",\"data_offsets\":[" +
         std::to_string(at) + "," + std::to_string(at + t.bytes.size()) + "]}";
    at += t.bytes.size();
  }
  return h + "}";
}

inline std::string raw_file(std::uint64_t header_len, const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &header_len, 8);
  return out + header + data;
}

inline void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline std::string data_of(const std::vector<raw_tensor>& ts) {
  std::string d;
  for (const auto& t : ts) d.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  return d;
}

inline void write_safetensors(const fs::path& p, const std::vector<raw_tensor>& ts, const std::string& metadata_json = "") {
  const std::string h = header_json(ts, metadata_json);
  write_bytes(p, raw_file(h.size(), h, data_of(ts)));
}

// A version 1.0 .npy file.
inline void write_npy(const fs::path& p, const std::string& descr, const std::vector<std::uint64_t>& shape,
                      const std::vector<std::uint8_t>& data, bool fortran = false) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (";
  for (auto d : shape) dict += std::to_string(d) + ", ";
  dict += "), }";
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(dict.size() & 0xFF);
  out += static_cast<char>(dict.size() >> 8);
  out += dict;
  out.append(reinterpret_cast<const char*>(data.data()), data.size());
  write_bytes(p, out);
}

// A fresh empty folder, removed afterwards.
class temp_dir {
 public:
  temp_dir() {
    static std::mt19937_64 g(std::random_device{}());
    path_ = fs::temp_directory_path() / ("blockq-tool-test-" + std::to_string(g()));
    fs::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& s) const { return path_ / s; }
  // Names of the entries, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(path_)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }

 private:
  fs::path path_;
};

struct run_result {
  int code = -1;
  std::string out, err;
};

// Runs the tool with the arguments (a shell string) in `dir`, after the shell
// commands `before` (e.g. "umask 077;"). The code is 128 + N for a signal N.
inline run_result run_tool(const temp_dir& dir, const std::string& args, const std::string& before = "") {
  const std::string out = (dir.path() / "..stdout").string(), err = (dir.path() / "..stderr").string();
  const std::string cmd = "cd '" + dir.path().string() + "' && " + before + " '" BLOCKQ_TOOL_PATH "' " + args + " >'" + out +
                          "' 2>'" + err + "'";
  const int st = std::system(cmd.c_str());
  run_result r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.out = read_bytes(out);
  r.err = read_bytes(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

}  // namespace tool_test
