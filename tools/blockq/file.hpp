// SPDX-License-Identifier: Apache-2.0
// Reading a whole file (memory-mapped where possible) and writing one
// atomically: to a temporary file in the same folder, renamed at the end and
// removed on any error or interruption.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace blockq_tool {

// A read-only view of a whole file.
class input_file {
 public:
  explicit input_file(const std::string& path);
  ~input_file();
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;

  std::span<const std::uint8_t> bytes() const noexcept { return {data_, size_}; }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  void* map_ = nullptr;            // mmap'ed region, or null
  std::vector<std::uint8_t> buf_;  // the contents when not mapped
};

// A file written under a temporary name, which commit() renames to the final
// path. Destroyed without commit() (an error), or on SIGINT / SIGTERM, the
// temporary file is removed.
class output_file {
 public:
  explicit output_file(const std::string& path);
  ~output_file();
  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;

  void write(const void* data, std::size_t n);
  void write(std::span<const std::uint8_t> b) { write(b.data(), b.size()); }
  void commit();
  const std::string& temp_path() const noexcept { return tmp_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

}  // namespace blockq_tool
