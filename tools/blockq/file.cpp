// SPDX-License-Identifier: Apache-2.0
#include "file.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor.hpp"

namespace blockq_tool {
namespace {

std::string sys_error(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

// The temporary file to remove when a signal ends the program; one at a time.
char g_pending_temp[4096];
std::atomic<bool> g_pending{false};

extern "C" void remove_temp_and_exit(int sig) {
  if (g_pending.load()) ::unlink(g_pending_temp);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

input_file::input_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw error(sys_error("cannot open", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string msg = sys_error("cannot read", path);
    ::close(fd);
    throw error(msg);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw error("'" + path + "' is not a regular file");
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) {
      map_ = m;
      data_ = static_cast<const std::uint8_t*>(m);
    } else {
      buf_.resize(size_);
      std::size_t got = 0;
      while (got < size_) {
        const ssize_t r = ::read(fd, buf_.data() + got, size_ - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          const std::string msg = sys_error("cannot read", path);
          ::close(fd);
          throw error(msg);
        }
        got += static_cast<std::size_t>(r);
      }
      data_ = buf_.data();
    }
  }
  ::close(fd);
}

input_file::~input_file() {
  if (map_) ::munmap(map_, size_);
}

output_file::output_file(const std::string& path) : path_(path) {
  const std::filesystem::path p(path);
  if (std::filesystem::is_directory(p)) throw error("output '" + path + "' is a directory");
  std::string dir = p.parent_path().string();
  if (dir.empty()) dir = ".";
  tmp_ = dir + "/." + p.filename().string() + ".blockq-XXXXXX";
  if (tmp_.size() >= sizeof(g_pending_temp)) throw error("output path too long: '" + path + "'");
  std::vector<char> name(tmp_.begin(), tmp_.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) throw error(sys_error("cannot create a file in", dir));
  tmp_.assign(name.data());
  ::fchmod(fd, 0644);
  f_ = ::fdopen(fd, "wb");
  if (!f_) {
    ::close(fd);
    ::unlink(tmp_.c_str());
    throw error(sys_error("cannot write", tmp_));
  }
  std::memcpy(g_pending_temp, tmp_.c_str(), tmp_.size() + 1);
  g_pending.store(true);
  std::signal(SIGINT, remove_temp_and_exit);
  std::signal(SIGTERM, remove_temp_and_exit);
  std::signal(SIGHUP, remove_temp_and_exit);
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
  g_pending.store(false);
}

output_file::~output_file() {
  if (f_) std::fclose(f_);
  if (!committed_) {
    ::unlink(tmp_.c_str());
    g_pending.store(false);
  }
}

}  // namespace blockq_tool
