#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (ASan+UBSan) and runs each for
# $1 seconds (default 300) on its seed corpus and dictionary. A crash is
# saved under fuzz/regressions/<target>/ (which `make test` replays) and
# fails the run. New corpus entries go to build/fuzz/corpus/, not the repo.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
dir=build/fuzz
mkdir -p "$dir"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWINDLASS_FUZZ=ON \
  -DCMAKE_CXX_COMPILER=clang++-14 >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; exit 1; }
cmake --build "$dir" -j "$(nproc)" 2>&1 | tail -n 20
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

passed=0
failed=0
for src in fuzz/*_fuzz.cpp; do
  stem=$(basename "$src" .cpp)
  target=${stem%_fuzz}
  work="$dir/corpus/$target"
  crashes="fuzz/regressions/$target"
  mkdir -p "$work" "$crashes"
  dict=()
  [ -f "fuzz/dict/$target.dict" ] && dict=(-dict="fuzz/dict/$target.dict")
  log="$dir/$target.log"
  if "$dir/fuzz/$stem" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$crashes/" "${dict[@]}" "$work" "fuzz/corpus/$target" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $target ok: ${runs:-?} executions in ${seconds}s"
    passed=$((passed + 1))
  else
    echo "fuzz: $target FAILED (see $log; the input is in $crashes/)"
    tail -n 40 "$log"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
