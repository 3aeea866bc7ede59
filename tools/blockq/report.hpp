// SPDX-License-Identifier: Apache-2.0
// `blockq report`: the error and speed of formats and rules on a file's
// tensors or on the built-in suite, and `blockq grid`.
#pragma once

#include <string>

namespace blockq_tool {

struct report_options {
  std::string input;    // empty: the built-in suite
  std::string formats;  // comma-separated; empty: the default set
  std::string rules;    // comma-separated; empty: each format's default (and mse where available)
  bool csv = false;
  bool formats_given = false, rules_given = false;  // an empty list given is an error
  std::string hessian;      // calibration activations (NAME [T, K]): the output-error view, rtn and gptq
  std::string hessian_map;  // JSON: weight name -> activation name
};

// Prints the report on stdout; throws error on bad options or input.
void run_report(const report_options& opt);

struct grid_options {
  std::string dist = "normal";
  std::string bits = "1-8";
  bool csv = false;
};

// A CSV field: quoted (RFC 4180) when it holds a comma, a quote or a newline.
std::string csv_field(const std::string& s);

// Prints the grid optimizer's table; throws error when the tool was built without it.
void run_grid(const grid_options& opt);

}  // namespace blockq_tool
