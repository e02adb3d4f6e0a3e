#!/usr/bin/env bash
# Installs what windlass needs on Debian 12, as root. Idempotent: a package
# that is already installed is not asked for again, so a second run costs a
# dpkg query and nothing else.
set -euo pipefail

# Build: compilers, CMake, and the libraries DESIGN.md names.
build_pkgs=(g++ cmake ninja-build make pkg-config libssl-dev zlib1g-dev
            libgtest-dev libgmock-dev libbenchmark-dev libspdlog-dev libfmt-dev
            libtomlplusplus-dev libcli11-dev libsystemd-dev libcurl4-openssl-dev libsimdjson-dev
            libjwt-dev nlohmann-json3-dev libhiredis-dev librabbitmq-dev liburing-dev)
# Tests: sanitizer and fuzzer runtimes, real clients, a real browser, real
# Redis and RabbitMQ servers, and PHP publishers (php-redis with Laravel's
# broadcasting, php-amqp).
test_pkgs=(clang-14 libclang-rt-14-dev python3 python3-websockets openssl
           chromium fonts-liberation procps nginx supervisor systemd strace
           prometheus dpkg-dev libboost-dev libwebsocketpp-dev php-cli
           redis-server redis-tools php-redis php-illuminate-broadcasting php-illuminate-redis
           php-illuminate-container rabbitmq-server php-amqp)

# The demo room (make room, docs/push-from-php.md): php-cli for its web
# app's side, and Node's npm for pusher-js and Laravel Echo.
demo_pkgs=(php-cli)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --with-test) want+=("${test_pkgs[@]}") ;;
  --with-demo) want+=("${demo_pkgs[@]}") ;;
esac
if [ "${1:-}" = "--with-test" ] || [ "${1:-}" = "--with-demo" ]; then
  # Node.js may come from another package than Debian's (the NodeSource
  # "nodejs" provides npm and conflicts with Debian's "npm"), so the commands
  # are checked, not the packages. playwright-core needs Node 20 or newer.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then want+=(nodejs npm); fi
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages and not root; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm clients for the tests (ws, playwright-core, pusher-js, laravel-echo, pusher),
# pinned by package-lock.json; the demo room's pages use two of them.
if [ "${1:-}" = "--with-test" ] || [ "${1:-}" = "--with-demo" ]; then
  here=$(cd "$(dirname "$0")/.." && pwd)
  stamp="$here/node_modules/.windlass-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$here/package-lock.json" "$stamp"; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/package-lock.json" "$stamp"
  fi
fi
