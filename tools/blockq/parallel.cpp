// SPDX-License-Identifier: Apache-2.0
#include "parallel.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <unistd.h>

namespace blockq_tool {
namespace {

std::mutex g_stderr_mutex;
bool g_bar_shown = false;  // guarded by g_stderr_mutex

using clock_type = std::chrono::steady_clock;

}  // namespace

struct progress::state {
  std::string label;
  std::uint64_t total = 0;
  std::atomic<std::uint64_t> done{0};
  clock_type::time_point start = clock_type::now(), last_draw{};
  bool enabled = false;
};

progress::progress(std::string label, std::uint64_t total) : s_(new state) {
  s_->label = std::move(label);
  s_->total = total;
  s_->enabled = ::isatty(STDERR_FILENO) == 1;
}

progress::~progress() {
  finish();
  delete s_;
}

void progress::add(std::uint64_t n) noexcept { s_->done.fetch_add(n, std::memory_order_relaxed); }

void progress::tick() {
  if (!s_->enabled) return;
  const auto now = clock_type::now();
  if (now - s_->start < std::chrono::seconds(1) || now - s_->last_draw < std::chrono::milliseconds(100)) return;
  s_->last_draw = now;
  const double frac =
      s_->total ? std::min(1.0, static_cast<double>(s_->done.load(std::memory_order_relaxed)) / static_cast<double>(s_->total)) : 1.0;
  const double secs = std::chrono::duration<double>(now - s_->start).count();
  constexpr int width = 30;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(width - filled), '.');
  char eta[32] = "";
  if (frac > 0.01) std::snprintf(eta, sizeof eta, ", %.0f s left", secs / frac - secs);
  const std::lock_guard<std::mutex> lock(g_stderr_mutex);
  std::fprintf(stderr, "\r\033[Kblockq: %s [%s] %3.0f%% (%.0f s%s)", s_->label.c_str(), bar.c_str(), frac * 100.0,
               secs, eta);
  std::fflush(stderr);
  g_bar_shown = true;
}

void progress::finish() {
  const std::lock_guard<std::mutex> lock(g_stderr_mutex);
  if (g_bar_shown) {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
    g_bar_shown = false;
  }
}

void warn(const std::string& what) {
  const std::lock_guard<std::mutex> lock(g_stderr_mutex);
  if (g_bar_shown) {
    std::fputs("\r\033[K", stderr);
    g_bar_shown = false;
  }
  std::fprintf(stderr, "blockq: warning: %s\n", what.c_str());
  std::fflush(stderr);
}

unsigned default_threads() noexcept { return std::max(1u, std::thread::hardware_concurrency()); }

void parallel_for(std::size_t n, unsigned threads, const std::function<void(std::size_t)>& f, progress* bar) {
  if (n == 0) return;
  const std::size_t workers = std::min<std::size_t>(std::max(1u, threads), n);
  if (workers == 1) {
    for (std::size_t i = 0; i < n; ++i) {
      f(i);
      if (bar) bar->tick();
    }
    return;
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex m;
  std::condition_variable cv;
  std::size_t finished = 0;
  auto work = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= n || failed.load()) break;
      try {
        f(i);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(m);
        if (!first_error) first_error = std::current_exception();
        failed.store(true);
      }
    }
    const std::lock_guard<std::mutex> lock(m);
    ++finished;
    cv.notify_one();
  };
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (std::size_t t = 0; t < workers; ++t) pool.emplace_back(work);
  {
    std::unique_lock<std::mutex> lock(m);
    while (finished < workers) {
      cv.wait_for(lock, std::chrono::milliseconds(100));
      if (bar) {
        lock.unlock();
        bar->tick();
        lock.lock();
      }
    }
  }
  for (auto& t : pool) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace blockq_tool
