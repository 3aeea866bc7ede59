// SPDX-License-Identifier: Apache-2.0
// blockq umbrella header: everything but the grid optimizer (blockq/grid.hpp,
// which alone needs Boost.Math). Needs only the standard library.
#pragma once

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/formats/half.hpp"
#include "blockq/formats/integer.hpp"
#include "blockq/formats/minifloat.hpp"
#include "blockq/formats/tie_mode.hpp"
#include "blockq/formats/ue8m0.hpp"
#include "blockq/fp4.hpp"
#include "blockq/kernels.hpp"
#include "blockq/metrics.hpp"
#include "blockq/mx.hpp"
#include "blockq/nvfp4.hpp"
#include "blockq/pack.hpp"
#include "blockq/scale_rule.hpp"
#include "blockq/search/continuous.hpp"
#include "blockq/search/discrete.hpp"
#include "blockq/search/hessian.hpp"
#include "blockq/search/refit.hpp"
#include "blockq/uniform.hpp"
#include "blockq/version.hpp"
