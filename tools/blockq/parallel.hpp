// SPDX-License-Identifier: Apache-2.0
// Work on several threads (std::thread only), a progress bar on stderr, and
// warnings that do not tear the bar.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace blockq_tool {

// A progress bar drawn on stderr when it is a terminal and the work has taken
// more than a second. add() may be called from any thread; tick() and
// finish() from the thread that created it.
class progress {
 public:
  progress(std::string label, std::uint64_t total);
  ~progress();
  progress(const progress&) = delete;
  progress& operator=(const progress&) = delete;

  void add(std::uint64_t n) noexcept;
  void tick();
  void finish();

 private:
  struct state;
  state* s_;
};

// Prints "blockq: warning: <what>" on stderr, clearing a progress bar first.
void warn(const std::string& what);

// The threads to use when the user gives 0: all hardware threads.
unsigned default_threads() noexcept;

// Runs f(i) for every i in [0, n) on up to `threads` threads and waits; the
// caller's thread draws the progress bar meanwhile. The first exception a
// task throws stops the remaining tasks and is rethrown here.
void parallel_for(std::size_t n, unsigned threads, const std::function<void(std::size_t)>& f,
                  progress* bar = nullptr);

}  // namespace blockq_tool
