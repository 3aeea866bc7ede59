// blockq: header-only block quantization of tensors.
// SPDX-License-Identifier: Apache-2.0
#pragma once

// The one place the version lives; CMakeLists.txt reads these three lines.
#define BLOCKQ_VERSION_MAJOR 0
#define BLOCKQ_VERSION_MINOR 1
#define BLOCKQ_VERSION_PATCH 0

#define BLOCKQ_STRINGIFY_DETAIL(x) #x
#define BLOCKQ_STRINGIFY(x) BLOCKQ_STRINGIFY_DETAIL(x)
#define BLOCKQ_VERSION_STRING                                                   \
  BLOCKQ_STRINGIFY(BLOCKQ_VERSION_MAJOR)                                       \
  "." BLOCKQ_STRINGIFY(BLOCKQ_VERSION_MINOR) "." BLOCKQ_STRINGIFY(BLOCKQ_VERSION_PATCH)
