// SPDX-License-Identifier: Apache-2.0
// AVX2 (+FMA, F16C) block kernels; anything not overloaded here falls back to arch/scalar.hpp.
#pragma once

#include "blockq/arch/scalar.hpp"
