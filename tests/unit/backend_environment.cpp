// The io_uring.* copies of the unit tests run with WINDLASS_IO=io_uring
// (tests/CMakeLists.txt): where this process cannot use io_uring, every
// test is skipped with the probe's reason instead of failing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

#include "windlass/loop.hpp"

namespace {

class BackendEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* io = std::getenv("WINDLASS_IO");
    if (io != nullptr && std::string_view(io) == "io_uring" && !windlass::Loop::io_uring_unavailable().empty()) {
      GTEST_SKIP() << "io_uring unavailable: " << windlass::Loop::io_uring_unavailable();
    }
  }
};

[[maybe_unused]] ::testing::Environment* const kBackend =
    ::testing::AddGlobalTestEnvironment(new BackendEnvironment);

}  // namespace
