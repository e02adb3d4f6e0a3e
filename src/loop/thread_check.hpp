// Checks of the thread contract (connection.hpp, loop.hpp): a method meant
// for a loop's own thread, called from another, aborts with a message in
// debug and sanitizer builds (WINDLASS_CHECKS), where the cost of asking
// which thread this is does not matter. Release builds check nothing.
#pragma once

#include "windlass/loop.hpp"

namespace windlass::detail {

[[noreturn]] void contract_violation(const char* what, const char* detail);

#if defined(WINDLASS_CHECKS)
inline constexpr bool kChecks = true;
#else
inline constexpr bool kChecks = false;
#endif

inline void check_loop_thread(const Loop* loop, const char* what) {
  if constexpr (kChecks) {
    if (loop != nullptr && !loop->in_loop_thread()) contract_violation(what, "called off its loop's thread");
  }
}

}  // namespace windlass::detail
