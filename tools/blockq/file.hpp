// SPDX-License-Identifier: Apache-2.0
// Reading a file with positional reads and writing one atomically: to a temporary file in the same folder, renamed at the end and
// removed on any error or interruption.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace blockq_tool {

struct pending_node;  // file.cpp

// Which file a path names: equal for the same file reached through symbolic
// or hard links.
struct file_id {
  std::uint64_t dev = 0, ino = 0;
  friend bool operator==(const file_id&, const file_id&) = default;
};

// A regular file opened for reading. Every read is positional (pread), so
// reads from several threads need no lock, and nothing depends on a mapping
// staying valid: a file that shrinks while it is read gives an error, not a
// SIGBUS. A FIFO, socket or device is refused at once (it is opened
// non-blocking, so opening one never waits).
class input_file {
 public:
  explicit input_file(const std::string& path);
  ~input_file();
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;

  const std::string& path() const noexcept { return path_; }
  std::uint64_t size() const noexcept { return size_; }  // when opened
  file_id id() const noexcept { return id_; }
  // Exactly out.size() bytes from `offset`; throws error when the file ends
  // before (it was truncated since it was opened) or cannot be read.
  void read(std::uint64_t offset, std::span<std::uint8_t> out) const;
  std::vector<std::uint8_t> read_all() const;

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  file_id id_;
};

// A file written under a temporary name, which commit() renames to the final
// path. Destroyed without commit() (an error), or on SIGINT / SIGTERM, the
// temporary file is removed.
class output_file {
 public:
  // Throws error, creating nothing, when `path` names one of `inputs` (the
  // same file, also through links) or a folder.
  explicit output_file(const std::string& path, std::span<const file_id> inputs = {});
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
  pending_node* pending_ = nullptr;
};

// A folder of outputs (a sharded model) written under a temporary name beside
// `path` and renamed to it by commit(), so that the folder appears complete or
// not at all. Files go in with output_file(folder.file("NAME")). Destroyed
// without commit() (an error), or on SIGINT / SIGTERM / SIGHUP, the temporary
// folder and its files are removed.
class output_folder {
 public:
  // Throws error when `path` exists (or names an input) or the folder cannot be made.
  explicit output_folder(const std::string& path, std::span<const file_id> inputs = {});
  ~output_folder();
  output_folder(const output_folder&) = delete;
  output_folder& operator=(const output_folder&) = delete;

  // The path, inside the temporary folder, of the file NAME (relative, may
  // hold subfolders, never ".."), its folders made.
  std::string file(const std::string& name);
  void commit();
  const std::string& temp_path() const noexcept { return tmp_; }

 private:
  std::string path_, tmp_;
  std::vector<std::string> dirs_;
  std::vector<pending_node*> pending_files_, pending_dirs_;
  pending_node* pending_ = nullptr;
  bool committed_ = false;
};

}  // namespace blockq_tool
