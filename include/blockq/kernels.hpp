// SPDX-License-Identifier: Apache-2.0
// All block kernels: the scalar oracle plus the architectures the compiler targets
// (arch/generic.hpp includes every architecture header the flags allow, then the block
// loops that call their kernels).
#pragma once

#include "blockq/arch.hpp"
#include "blockq/arch/generic.hpp"
