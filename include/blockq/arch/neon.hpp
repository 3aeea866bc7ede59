// SPDX-License-Identifier: Apache-2.0
// NEON block kernels; anything not overloaded here falls back to arch/scalar.hpp.
#pragma once

#include "blockq/arch/scalar.hpp"
