#!/usr/bin/env bash
# Packaging test (ctest: package.find_package). From an already built tree
# (WINDLASS_BUILD_DIR; without it, a Release build of the library and
# windlass-server is made in a temporary directory):
#   1. `cmake --install` into a temporary prefix; the expected files are there
#      and the installed headers include nothing outside <...> and "windlass/..."
#      and each compiles on its own;
#   2. tests/package, a separate project, finds it with
#      find_package(windlass CONFIG) (-DCMAKE_PREFIX_PATH=<prefix>), builds,
#      and its consumer runs (handshake + echo on a free port);
#   3. the same main.cpp built with `pkg-config --cflags --libs windlass` runs;
#   4. the installed windlass-server accepts the installed config (--check-config);
#   5. `cpack -G DEB` (output in the temporary directory, not the build dir)
#      makes windlass-server_<version>_<arch>.deb with the binary, the unit,
#      the config as a conffile, the chat page, a Depends line, and no headers.
# Under a sanitizer build the static libraries need the consumer to link the
# sanitizer runtimes too: the test says "skipped" and passes (it runs in the
# release stage).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=${WINDLASS_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
tmp=$(mktemp -d /tmp/windlass-package.XXXXXX)
cleanup() { [ -n "${WINDLASS_KEEP_TMP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT

step() { echo "== package: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
run_logged() {  # log, command...: quiet unless it fails
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    fail "$* (log above)"
  fi
}

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)

build=${WINDLASS_BUILD_DIR:-}
if [ -n "$build" ]; then
  [ -f "$build/CMakeCache.txt" ] || fail "WINDLASS_BUILD_DIR=$build has no CMakeCache.txt"
  sanitize=$(sed -n 's/^WINDLASS_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")
  if [ -n "$sanitize" ]; then
    echo "package: skipped under sanitizers (WINDLASS_SANITIZE=$sanitize in $build): the installed"
    echo "package: static libraries would need the consumer built with -fsanitize=${sanitize//;/,} too"
    exit 0
  fi
else
  build=$tmp/build
  step "building windlass in $build (set WINDLASS_BUILD_DIR to reuse a build)"
  run_logged "$tmp/configure.log" cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DWINDLASS_TESTS=OFF -DWINDLASS_BENCH=OFF
  run_logged "$tmp/build.log" cmake --build "$build" -j "$(nproc)"
fi
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || version=$(sed -n 's/^project(windlass VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")

# --- 1. cmake --install ------------------------------------------------------
prefix=$tmp/prefix
step "cmake --install $build --prefix $prefix"
run_logged "$tmp/install.log" cmake --install "$build" --prefix "$prefix"
pc=$(find "$prefix" -name windlass.pc -path '*/pkgconfig/*' | head -n1)
config=$(find "$prefix" -name windlassConfig.cmake | head -n1)
libdir=$(dirname "$(find "$prefix" -name libwindlass.a | head -n1)")
for f in "$prefix/include/windlass/windlass.hpp" "$libdir/libwindlass.a" "$libdir/libwindlass_proto.a" \
         "$config" "$(dirname "$config")/windlassConfigVersion.cmake" \
         "$(dirname "$config")/windlassTargets.cmake" "$pc" \
         "$prefix/bin/windlass-server" "$prefix/lib/systemd/system/windlass.service" \
         "$prefix/etc/windlass/windlass.toml" "$prefix/share/windlass/public/index.html"; do
  [ -n "$f" ] && [ -f "$f" ] || fail "not installed: ${f:-(one of windlass.pc, windlassConfig.cmake)}"
done
if find "$prefix/include" -type f ! -name '*.hpp' | grep -q .; then
  fail "non-header files under include/: $(find "$prefix/include" -type f ! -name '*.hpp')"
fi
bad_includes=$(grep -HnE '^\s*#\s*include' "$prefix"/include/windlass/*.hpp | grep -vE '#\s*include\s*(<[^>]+>|"windlass/[^"]+")' || true)
[ -z "$bad_includes" ] || fail "installed headers include something that is not installed:
$bad_includes"
# Each installed header compiles alone, with only the installed include dir.
for h in "$prefix"/include/windlass/*.hpp; do
  echo "#include <windlass/$(basename "$h")>" |
    g++ -std=c++20 -Wall -Wextra -fsyntax-only -I"$prefix/include" -x c++ - 2>"$tmp/header.log" ||
    { cat "$tmp/header.log" >&2; fail "installed header $(basename "$h") does not compile on its own"; }
done
echo "installed: $(cd "$prefix" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')"

# --- 2. find_package(windlass CONFIG) ---------------------------------------
step "find_package(windlass CONFIG) from tests/package with CMAKE_PREFIX_PATH=$prefix"
consumer=$tmp/consumer
run_logged "$tmp/consumer-configure.log" cmake -S "$src/tests/package" -B "$consumer" "${gen[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
grep -F "windlass $version from $(dirname "$config")" "$tmp/consumer-configure.log" \
  || fail "find_package did not find windlass $version in $prefix: $(grep windlass "$tmp/consumer-configure.log")"
run_logged "$tmp/consumer-build.log" cmake --build "$consumer"
"$consumer/consumer" || fail "the find_package consumer failed"

# --- 3. pkg-config -----------------------------------------------------------
step "pkg-config --cflags --libs windlass (PKG_CONFIG_PATH=$(dirname "$pc"))"
export PKG_CONFIG_PATH=$(dirname "$pc")
pc_version=$(pkg-config --modversion windlass) || fail "pkg-config cannot read windlass.pc"
[ "$pc_version" = "$version" ] || fail "windlass.pc says version $pc_version, the project $version"
flags=$(pkg-config --cflags --libs windlass)
echo "pkg-config: $flags"
run_logged "$tmp/pc-build.log" g++ -std=c++20 -O2 "$src/tests/package/main.cpp" -o "$tmp/consumer-pc" $flags
"$tmp/consumer-pc" || fail "the pkg-config consumer failed"

# --- 4. the installed server and its config ---------------------------------
step "installed windlass-server --check-config on the installed windlass.toml"
grep -q "root = \"$prefix/share/windlass/public\"" "$prefix/etc/windlass/windlass.toml" \
  || fail "installed windlass.toml does not serve $prefix/share/windlass/public: $(grep -n 'root' "$prefix/etc/windlass/windlass.toml")"
"$prefix/bin/windlass-server" --config "$prefix/etc/windlass/windlass.toml" --check-config \
  || fail "the installed windlass-server rejects the installed windlass.toml"
grep -q "^ExecStart=$prefix/bin/windlass-server --config $prefix/etc/windlass/windlass.toml" \
  "$prefix/lib/systemd/system/windlass.service" || fail "installed unit does not point at $prefix"

# --- 5. cpack -G DEB ---------------------------------------------------------
step "cpack -G DEB"
[ -f "$build/CPackConfig.cmake" ] || fail "$build/CPackConfig.cmake missing (cmake/install.cmake not included?)"
run_logged "$tmp/cpack.log" cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/deb"
deb=$(find "$tmp/deb" -maxdepth 1 -name 'windlass-server_*.deb' | head -n1)
[ -n "$deb" ] || fail "no windlass-server_*.deb in $tmp/deb: $(ls "$tmp/deb")"
echo "package: $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{print $1, $6}' | tee "$tmp/contents.txt"
for f in ./usr/bin/windlass-server ./usr/lib/systemd/system/windlass.service ./etc/windlass/windlass.toml \
         ./usr/share/windlass/public/index.html; do
  grep -qE "^-\S* $f\$" "$tmp/contents.txt" || fail ".deb lacks $f"
done
grep -qE '^-rwxr-xr-x \./usr/bin/windlass-server$' "$tmp/contents.txt" || fail "windlass-server is not 0755 in the .deb"
if grep -qE '\./usr/(include|lib/cmake|lib/pkgconfig)|\.a$' "$tmp/contents.txt"; then
  fail ".deb of windlass-server carries development files"
fi
dpkg-deb -I "$deb" | tee "$tmp/info.txt"
[ "$(dpkg-deb -f "$deb" Package)" = windlass-server ] || fail "Package is not windlass-server"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version is not $version"
[ "$(dpkg-deb -f "$deb" Section)" = net ] || fail "Section is not net"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libssl3 libspdlog libsystemd0; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
mkdir -p "$tmp/control"
dpkg-deb -e "$deb" "$tmp/control"
[ "$(cat "$tmp/control/conffiles")" = /etc/windlass/windlass.toml ] || fail "conffiles: $(cat "$tmp/control/conffiles")"
for s in postinst prerm postrm; do
  [ -x "$tmp/control/$s" ] && sh -n "$tmp/control/$s" || fail "maintainer script $s missing or broken"
done
mkdir -p "$tmp/root"
dpkg-deb -x "$deb" "$tmp/root"
grep -q '^root = "/usr/share/windlass/public"' "$tmp/root/etc/windlass/windlass.toml" \
  || fail "packaged windlass.toml does not serve /usr/share/windlass/public"
cmp -s "$tmp/root/usr/lib/systemd/system/windlass.service" "$src/deploy/systemd/windlass.service" \
  || fail "packaged unit differs from deploy/systemd/windlass.service"
# Every library the packaged binary links directly (its NEEDED entries; what
# those need is their packages' business) comes from a package Depends names,
# with dpkg-shlibdeps or from the list install.cmake falls back to.
bin="$tmp/root/usr/bin/windlass-server"
ldd "$bin" >"$tmp/ldd.txt" || fail "ldd windlass-server"
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || fail "readelf found no NEEDED entries in windlass-server"
for soname in $needed; do
  path=$(awk -v so="$soname" '$1 == so && $2 == "=>" { print $3 }' "$tmp/ldd.txt")
  [[ "$path" == /* ]] || continue  # the vDSO and the loader have no package to name
  owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null) || continue
  pkg=${owner%%:*}
  [[ "$depends" == *"$pkg"* ]] || fail "Depends lacks $pkg (for $soname): $depends"
done

echo "package: PASS (cmake --install, find_package, pkg-config, --check-config, $(basename "$deb"))"
