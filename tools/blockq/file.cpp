// SPDX-License-Identifier: Apache-2.0
#include "file.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <algorithm>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor.hpp"

namespace blockq_tool {

// A path to remove on a signal (see remove_temp_and_exit).
struct pending_node {
  std::string path;
  bool folder = false;
  std::atomic<bool> active{true};
  pending_node* next = nullptr;
};

namespace {

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

// What a signal handler removes before the program ends: temporary files,
// then temporary folders. A list that only grows, of nodes allocated before
// the signal; the handler only reads it (async-signal-safe: unlink, rmdir).
std::atomic<pending_node*> g_pending{nullptr};

extern "C" void remove_temp_and_exit(int sig) {
  for (pending_node* n = g_pending.load(); n; n = n->next)
    if (n->active.load() && !n->folder) ::unlink(n->path.c_str());
  for (pending_node* n = g_pending.load(); n; n = n->next)
    if (n->active.load() && n->folder) ::rmdir(n->path.c_str());
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// Registers a path for removal on SIGINT, SIGTERM or SIGHUP; the node's
// `active` is cleared once the path is committed or removed.
pending_node* remove_on_signal(const std::string& path, bool folder) {
  auto* n = new pending_node;  // never freed: the handler may read it at any time
  n->path = path;
  n->folder = folder;
  n->next = g_pending.load();
  while (!g_pending.compare_exchange_weak(n->next, n)) {
  }
  std::signal(SIGINT, remove_temp_and_exit);
  std::signal(SIGTERM, remove_temp_and_exit);
  std::signal(SIGHUP, remove_temp_and_exit);
  return n;
}

mode_t current_umask() {
  // Read by setting it; the tool calls this before it starts any thread.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return mask;
}

// Refuses to create `path` when it names one of the inputs.
void check_not_input(const std::string& path, std::span<const file_id> inputs) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  const file_id id{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
  for (const file_id& in : inputs)
    if (in == id) throw error("the output '" + path + "' is the input file (also through a link); write elsewhere");
}

}  // namespace

input_file::input_file(const std::string& path) : path_(path) {
  // O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd_ < 0) throw error(sys_error("cannot open", path));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string msg = sys_error("cannot read", path);
    ::close(fd_);
    throw error(msg);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    const char* kind = S_ISDIR(st.st_mode)    ? " (a folder)"
                       : S_ISFIFO(st.st_mode) ? " (a FIFO)"
                       : S_ISSOCK(st.st_mode) ? " (a socket)"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? " (a device)"
                                                                    : "";
    throw error("'" + path + "' is not a regular file" + kind);
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
  id_ = {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

input_file::~input_file() { ::close(fd_); }

void input_file::read(std::uint64_t offset, std::span<std::uint8_t> out) const {
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t r = ::pread(fd_, out.data() + got, out.size() - got, static_cast<off_t>(offset + got));
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r < 0) throw error(sys_error("cannot read", path_));
    if (r == 0)
      throw error("'" + path_ + "' ended at byte " + std::to_string(offset + got) + " while reading " +
                  std::to_string(out.size()) + " bytes at " + std::to_string(offset) +
                  " (the file is shorter than when it was opened: truncated meanwhile?)");
    got += static_cast<std::size_t>(r);
  }
}

std::vector<std::uint8_t> input_file::read_all() const {
  std::vector<std::uint8_t> b(static_cast<std::size_t>(size_));
  read(0, b);
  return b;
}

output_file::output_file(const std::string& path, std::span<const file_id> inputs) : path_(path) {
  const std::filesystem::path p(path);
  if (std::filesystem::is_directory(p)) throw error("output '" + path + "' is a directory");
  check_not_input(path, inputs);
  std::string dir = p.parent_path().string();
  if (dir.empty()) dir = ".";
  tmp_ = dir + "/." + p.filename().string() + ".blockq-XXXXXX";
  std::vector<char> name(tmp_.begin(), tmp_.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) throw error(sys_error("cannot create a file in", dir));
  tmp_.assign(name.data());
  // mkstemp makes the file 0600; give it the mode a file created with
  // open(..., 0666) would have: the umask decides.
  ::fchmod(fd, 0666 & ~current_umask());
  f_ = ::fdopen(fd, "wb");
  if (!f_) {
    ::close(fd);
    ::unlink(tmp_.c_str());
    throw error(sys_error("cannot write", tmp_));
  }
  pending_ = remove_on_signal(tmp_, false);
}

void output_file::write(const void* data, std::size_t n) {
  if (n && std::fwrite(data, 1, n, f_) != n) throw error(sys_error("cannot write", tmp_));
}

void output_file::commit() {
  if (std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0) throw error(sys_error("cannot write", tmp_));
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) throw error(sys_error("cannot write", tmp_));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) throw error(sys_error("cannot rename the output to", path_));
  committed_ = true;
  pending_->active.store(false);
}

output_file::~output_file() {
  if (f_) std::fclose(f_);
  if (!committed_) {
    ::unlink(tmp_.c_str());
    pending_->active.store(false);
  }
}

output_folder::output_folder(const std::string& path, std::span<const file_id> inputs) : path_(path) {
  const std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  if (p.filename().empty() || p.filename() == "." || p.filename() == "..")
    throw error("output folder '" + path + "' has no name");
  check_not_input(path, inputs);
  std::error_code ec;
  if (std::filesystem::exists(p, ec)) throw error("output '" + path + "' exists; remove it or choose another folder");
  std::string dir = p.parent_path().string();
  if (dir.empty()) dir = ".";
  std::string name = dir + "/." + p.filename().string() + ".blockq-XXXXXX";
  std::vector<char> buf(name.begin(), name.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw error(sys_error("cannot create a folder in", dir));
  tmp_.assign(buf.data());
  // As a folder made by mkdir would be (mkdtemp makes it 0700).
  ::chmod(tmp_.c_str(), 0777 & ~current_umask());
  pending_ = remove_on_signal(tmp_, true);
}

std::string output_folder::file(const std::string& name) {
  const std::filesystem::path rel(name);
  if (name.empty() || rel.is_absolute())
    throw error("invalid output file name '" + name + "'");
  for (const auto& part : rel)
    if (part == ".." || part == ".") throw error("invalid output file name '" + name + "'");
  const std::filesystem::path full = std::filesystem::path(tmp_) / rel;
  std::error_code ec;
  std::filesystem::create_directories(full.parent_path(), ec);
  if (ec) throw error("cannot create folder '" + full.parent_path().string() + "': " + ec.message());
  for (std::filesystem::path d = full.parent_path(); d != std::filesystem::path(tmp_) && !d.empty(); d = d.parent_path())
    if (std::find(dirs_.begin(), dirs_.end(), d.string()) == dirs_.end()) {
      dirs_.push_back(d.string());
      pending_dirs_.push_back(remove_on_signal(d.string(), true));
    }
  pending_files_.push_back(remove_on_signal(full.string(), false));
  return full.string();
}

void output_folder::commit() {
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) throw error(sys_error("cannot rename the output to", path_));
  committed_ = true;
  for (auto* n : pending_files_) n->active.store(false);
  for (auto* n : pending_dirs_) n->active.store(false);
  pending_->active.store(false);
}

output_folder::~output_folder() {
  if (committed_) return;
  std::error_code ec;
  std::filesystem::remove_all(tmp_, ec);
  for (auto* n : pending_files_) n->active.store(false);
  for (auto* n : pending_dirs_) n->active.store(false);
  pending_->active.store(false);
}

}  // namespace blockq_tool
