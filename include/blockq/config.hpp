// SPDX-License-Identifier: Apache-2.0
// Namespace, error-reporting and small portability macros shared by every header.
#pragma once

#include <string>

#include "blockq/version.hpp"

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#include <stdexcept>
#define BLOCKQ_HAS_EXCEPTIONS 1
#else
#include <cstdio>
#include <cstdlib>
#define BLOCKQ_HAS_EXCEPTIONS 0
#endif

// Every public name lives in blockq::v0 (an inline namespace), so that two
// major versions can be linked into one program.
#define BLOCKQ_BEGIN_NAMESPACE namespace blockq { inline namespace v0 {
#define BLOCKQ_END_NAMESPACE } }

// BLOCKQ_THROW(msg) reports an invalid argument. Define it before including
// blockq to route errors elsewhere; without exceptions it prints and aborts.
#ifndef BLOCKQ_THROW
#if BLOCKQ_HAS_EXCEPTIONS
#define BLOCKQ_THROW(msg) throw std::invalid_argument(msg)
#else
#define BLOCKQ_THROW(msg) (std::fputs((std::string(msg) + "\n").c_str(), stderr), std::abort())
#endif
#endif

// BLOCKQ_LAMBDA_INLINE, after a lambda's parameter list: forced inline. The
// kernels dispatch on the tie rule and the kind of divisor through generic
// lambdas (one straight loop per variant); the sweep's lambdas share state
// that must stay in registers (one call left out of line takes its address).
// BLOCKQ_NOINLINE: a cold variant kept out of its caller's hot loop.
#if defined(__GNUC__) || defined(__clang__)
#define BLOCKQ_NOINLINE __attribute__((noinline))
#define BLOCKQ_ALWAYS_INLINE inline __attribute__((always_inline))
#define BLOCKQ_LAMBDA_INLINE __attribute__((always_inline))
#define BLOCKQ_RESTRICT __restrict__
#else
#define BLOCKQ_NOINLINE
#define BLOCKQ_ALWAYS_INLINE inline
#define BLOCKQ_LAMBDA_INLINE
#define BLOCKQ_RESTRICT
#endif

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

// Checks a precondition at the API boundary; the message names the value.
inline void require(bool ok, const std::string& what) {
  if (!ok) BLOCKQ_THROW("blockq: " + what);
}

}  // namespace detail
BLOCKQ_END_NAMESPACE
