// SPDX-License-Identifier: Apache-2.0
// The distributions the grid optimizer (SPEC §9) works with.
//
// Every function of blockq/grid/ takes any Boost.Math distribution of double
// (the normal one gets closed-form cell moments, the others quadrature), or an
// any_distribution: a value type holding one of the four distributions the
// command-line tool offers, chosen from a string:
//
//   any_distribution parse_distribution(std::string_view text);
//     "normal[:SIGMA]"   boost::math::normal(0, SIGMA)      (SIGMA defaults to 1)
//     "laplace[:B]"      boost::math::laplace(0, B)         (B defaults to 1; variance 2 B^2)
//     "logistic[:S]"     boost::math::logistic(0, S)        (S defaults to 1; variance pi^2 S^2 / 3)
//     "student_t:NU"     boost::math::students_t(NU), NU > 2 (variance NU / (NU - 2))
//   std::string any_distribution::name() const;   // parses back to the same distribution
//   template <class F> decltype(auto) any_distribution::visit(F&& f) const;
//
// The expected squared error is finite only when the second moment is, so a
// Student-t needs NU > 2; parse_distribution and every grid function check it.
#pragma once

#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <boost/math/distributions/laplace.hpp>
#include <boost/math/distributions/logistic.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>

#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE

namespace detail {
// Boost.Math in double without promotion to long double: the Student-t
// density, for one, is 30 times faster and still accurate to a few ulp.
using fast_policy = boost::math::policies::policy<boost::math::policies::promote_double<false>>;
}  // namespace detail

// One of the four distributions of the command-line tool, with its parameters.
// It holds them with detail::fast_policy; a distribution with another policy
// converts, keeping its parameters.
class any_distribution {
 public:
  using normal = boost::math::normal_distribution<double, detail::fast_policy>;
  using laplace = boost::math::laplace_distribution<double, detail::fast_policy>;
  using students_t = boost::math::students_t_distribution<double, detail::fast_policy>;
  using logistic = boost::math::logistic_distribution<double, detail::fast_policy>;
  using variant_type = std::variant<normal, laplace, students_t, logistic>;

  any_distribution() = default;  // the standard normal
  template <class Policy>
  any_distribution(const boost::math::normal_distribution<double, Policy>& d)
      : v_(normal(d.mean(), d.standard_deviation())) {}
  template <class Policy>
  any_distribution(const boost::math::laplace_distribution<double, Policy>& d)
      : v_(laplace(d.location(), d.scale())) {}
  template <class Policy>
  any_distribution(const boost::math::students_t_distribution<double, Policy>& d)
      : v_(students_t(d.degrees_of_freedom())) {}
  template <class Policy>
  any_distribution(const boost::math::logistic_distribution<double, Policy>& d)
      : v_(logistic(d.location(), d.scale())) {}

  const variant_type& variant() const noexcept { return v_; }

  // Calls f with the Boost.Math distribution held.
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit(std::forward<F>(f), v_);
  }

  // The text parse_distribution reads back to this distribution ("normal",
  // "laplace:2", "student_t:3"). Non-zero locations are not part of the
  // grammar; they print as "@LOCATION" for information.
  std::string name() const;

 private:
  variant_type v_;
};

namespace detail {

template <class Dist>
struct is_normal : std::false_type {};
template <class Policy>
struct is_normal<boost::math::normal_distribution<double, Policy>> : std::true_type {};

template <class Dist>
struct is_students_t : std::false_type {};
template <class Policy>
struct is_students_t<boost::math::students_t_distribution<double, Policy>> : std::true_type {};

inline std::string format_number(double v) {
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest round trip
  return std::string(buf, res.ptr);
}

// The second moment E[X^2] must be finite for the squared error to be.
template <class Dist>
void require_finite_second_moment(const Dist& dist) {
  if constexpr (is_students_t<Dist>::value) {
    require(dist.degrees_of_freedom() > 2.0,
            "student_t:" + format_number(dist.degrees_of_freedom()) + ": Student-t with ν ≤ 2 has no finite variance (" +
                format_number(dist.degrees_of_freedom()) +
                " degrees of freedom), so the expected squared error is infinite: use nu > 2");
  } else {
    (void)dist;
  }
}

// E[X^2] = Var X + (E X)^2, the signal power.
template <class Dist>
double second_moment(const Dist& dist) {
  require_finite_second_moment(dist);
  const double m = boost::math::mean(dist);
  return boost::math::variance(dist) + m * m;
}

}  // namespace detail

inline std::string any_distribution::name() const {
  return visit([](const auto& d) -> std::string {
    using D = std::decay_t<decltype(d)>;
    std::string out;
    double location = 0.0;
    if constexpr (std::is_same_v<D, normal>) {
      out = "normal";
      if (d.standard_deviation() != 1.0) out += ":" + detail::format_number(d.standard_deviation());
      location = d.mean();
    } else if constexpr (std::is_same_v<D, laplace>) {
      out = "laplace";
      if (d.scale() != 1.0) out += ":" + detail::format_number(d.scale());
      location = d.location();
    } else if constexpr (std::is_same_v<D, logistic>) {
      out = "logistic";
      if (d.scale() != 1.0) out += ":" + detail::format_number(d.scale());
      location = d.location();
    } else {
      out = "student_t:" + detail::format_number(d.degrees_of_freedom());
    }
    if (location != 0.0) out += "@" + detail::format_number(location);
    return out;
  });
}

// Reads "normal", "normal:SIGMA", "laplace", "laplace:B", "logistic",
// "logistic:S" or "student_t:NU" (also "students_t:NU", "t:NU", "gaussian").
// Throws std::invalid_argument naming the text on anything else.
inline any_distribution parse_distribution(std::string_view text) {
  const std::string quoted = "\"" + std::string(text) + "\"";
  const auto colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const bool has_param = colon != std::string_view::npos;
  double param = 1.0;
  if (has_param) {
    const std::string_view num = text.substr(colon + 1);
    const auto res = std::from_chars(num.data(), num.data() + num.size(), param);
    detail::require(res.ec == std::errc{} && res.ptr == num.data() + num.size() && std::isfinite(param) &&
                        param > 0.0,
                    "distribution " + quoted + ": the parameter after ':' must be a finite number > 0");
  }
  if (kind == "normal" || kind == "gaussian") return any_distribution::normal(0.0, param);
  if (kind == "laplace") return any_distribution::laplace(0.0, param);
  if (kind == "logistic") return any_distribution::logistic(0.0, param);
  if (kind == "student_t" || kind == "students_t" || kind == "t") {
    detail::require(has_param, "distribution " + quoted + ": student_t needs its degrees of freedom, e.g. student_t:3");
    const any_distribution::students_t d(param);
    detail::require_finite_second_moment(d);
    return d;
  }
  BLOCKQ_THROW("blockq: unknown distribution " + quoted +
               " (expected normal[:SIGMA] | laplace[:B] | student_t:NU | logistic[:S])");
}

BLOCKQ_END_NAMESPACE
