#!/usr/bin/env bash
# Builds and runs windlass's tests. Stages:
#   release  the normal (Release) build: unit, fuzz replays, conformance, integration, e2e
#   asan     the same tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   tsan     the tests that involve threads, under ThreadSanitizer
# The tests that run a loop run on both of its backends: once as themselves
# (WINDLASS_IO=epoll) and once as io_uring.<name> (WINDLASS_IO=io_uring), in
# every stage: every such unit test, the conformance suite, the hostile
# clients and every integration and e2e test (tests/CMakeLists.txt,
# windlass_test_on_both_backends).
#   fuzz     every libFuzzer target for a short, fixed time (clang-14)
#   all      all of the above
# Every stage runs even if an earlier one failed; the last line is the total.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)
stage=${1:-all}
passed=0
failed=0
failed_stages=()

# Sanitizer reports must fail the test that triggered them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp}

configure_build() {  # dir, cmake args... [-- targets...]
  local dir=$1; shift
  local args=() targets=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift && targets=("$@")
  cmake -S . -B "$dir" -G Ninja "${args[@]}" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  local t=()
  [ "${#targets[@]}" -gt 0 ] && t=(--target "${targets[@]}")
  cmake --build "$dir" -j "$jobs" "${t[@]}" 2>&1 | tail -n 25
  return "${PIPESTATUS[0]}"
}

# The sanitizer builds: -O1 with line tables only (-g1), what the sanitizers'
# own docs advise; their reports name every frame's file and line, and the
# build takes about half the time of RelWithDebInfo's -O2 -g.
sanitizer_build=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DWINDLASS_BENCH=OFF)

run_ctest() {  # name, dir, ctest args...
  local name=$1 dir=$2; shift 2
  local log="$dir/ctest.log"
  echo "== $name: ctest $*"
  (cd "$dir" && ctest --output-on-failure --timeout 300 "$@") 2>&1 | tee "$log" | grep -vE '^\s+Start ' 
  local total fails
  total=$(sed -n 's/.*tests failed out of \([0-9]\+\).*/\1/p' "$log" | tail -n1)
  fails=$(sed -n 's/.*, \([0-9]\+\) tests failed out of.*/\1/p' "$log" | tail -n1)
  if [ -z "$total" ]; then
    echo "== $name: ctest produced no summary"; failed=$((failed + 1)); failed_stages+=("$name"); return
  fi
  passed=$((passed + total - fails))
  failed=$((failed + fails))
  [ "$fails" -eq 0 ] || failed_stages+=("$name")
}

stage_release() {
  mkdir -p build
  if configure_build build/release -DCMAKE_BUILD_TYPE=Release; then
    run_ctest release build/release -j "$jobs"
  else
    echo "== release: build failed"; failed=$((failed + 1)); failed_stages+=(release-build)
  fi
}

stage_asan() {
  mkdir -p build
  if configure_build build/asan "${sanitizer_build[@]}" "-DWINDLASS_SANITIZE=address;undefined"; then
    # The browser test adds nothing under ASan (the server code is the same as in
    # the integration tests) and is the slowest: it runs in the release stage only.
    run_ctest asan build/asan -j "$jobs" -LE e2e
  else
    echo "== asan: build failed"; failed=$((failed + 1)); failed_stages+=(asan-build)
  fi
}

stage_tsan() {
  mkdir -p build
  if configure_build build/tsan "${sanitizer_build[@]}" -DWINDLASS_SANITIZE=thread \
      -- windlass_unit_tests windlass-echo windlass-chat windlass-auth-test-server windlass-io-probe; then
    # The unit tests are where threads meet (Loop::post, cross-thread send,
    # the threaded App). The servers run one loop per core, so the
    # conformance suite, the chat room (a topic published across loops) and
    # the auth proxy (checks shared across loops) run under TSan too, with
    # real sockets and real clients.
    run_ctest tsan build/tsan -j "$jobs" -L unit
    run_ctest tsan-servers build/tsan \
      -R '^(io_uring\.)?(conformance\.conformance_test|integration\.chat_python_test|integration\.auth_proxy_test)$'
  else
    echo "== tsan: build failed"; failed=$((failed + 1)); failed_stages+=(tsan-build)
  fi
}

stage_fuzz() {
  local seconds=${FUZZ_SMOKE_SECONDS:-10}  # a smoke run: the regressions replay in ctest; scripts/fuzz.sh N for longer
  echo "== fuzz: each target for ${seconds}s"
  local out
  out=$(scripts/fuzz.sh "$seconds" 2>&1)
  echo "$out" | grep -E '^fuzz: .* (ok|FAILED)' 
  local p f
  p=$(echo "$out" | sed -n 's/^fuzz: \([0-9]\+\) passed, \([0-9]\+\) failed$/\1/p')
  f=$(echo "$out" | sed -n 's/^fuzz: \([0-9]\+\) passed, \([0-9]\+\) failed$/\2/p')
  if [ -z "$p" ]; then  # the build failed before any target ran
    echo "$out" | tail -n 30; failed=$((failed + 1)); failed_stages+=(fuzz); return
  fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -eq 0 ] || failed_stages+=(fuzz)
}

case "$stage" in
  release) stage_release ;;
  asan) stage_asan ;;
  tsan) stage_tsan ;;
  fuzz) stage_fuzz ;;
  all) stage_release; stage_asan; stage_tsan; stage_fuzz ;;
  *) echo "usage: $0 [release|asan|tsan|fuzz|all]" >&2; exit 2 ;;
esac

echo
if [ "${#failed_stages[@]}" -gt 0 ]; then echo "failing stages: ${failed_stages[*]}"; fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "${#failed_stages[@]}" -eq 0 ]
