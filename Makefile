# windlass — the two commands: `make run` and `make test`.
# Everything else is here for developers; `make help` lists it.

SHELL := /bin/bash
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: help deps test-deps build run room echo test test-quick asan tsan fuzz fuzz-smoke bench micro format format-check clean

help:
	@echo "make run         install what is missing, build, start windlass-server (deploy/windlass.toml) on 127.0.0.1:8080"
	@echo "make test        install, build, run every test (normal, ASan+UBSan, TSan, fuzz smoke)"
	@echo "make room        make run plus the demo room's PHP side: http://127.0.0.1:8080/room.html (docs/push-from-php.md)"
	@echo "make echo        start examples/echo on 127.0.0.1:9001 (conformance and benchmarks)"
	@echo "make build       Release build in build/release (portable; CMAKE_FLAGS=-DWINDLASS_NATIVE=ON to tune)"
	@echo "make test-quick  the normal build's tests only"
	@echo "make fuzz        run every libFuzzer target for FUZZ_SECONDS (default 300) each"
	@echo "make bench       windlass beside the bench/peers servers under load (bench/side_by_side.sh)"
	@echo "make format      clang-format the tree; make format-check verifies it"

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --with-test

build: deps
	@cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build/release -j $(JOBS)

run: build
	@echo
	@echo "  windlass chat: open http://127.0.0.1:8080/ in two browser tabs (Ctrl-C stops it)"
	@echo "  also: echo at ws://127.0.0.1:8080/echo, metrics at http://127.0.0.1:8080/metrics"
	@echo
	@build/release/src/server/windlass-server --config deploy/windlass.toml --host 127.0.0.1 --port 8080

# The demo room: what `make run` serves, with pusher-js and Laravel Echo
# installed and examples/pusher/auth_server.php (the web app's side) on
# 127.0.0.1:8000 beside it; Ctrl-C stops both.
room: build
	@scripts/install-deps.sh --with-demo
	@echo
	@echo "  windlass room: open http://127.0.0.1:8080/room.html in two browser tabs (Ctrl-C stops it)"
	@echo "  publish from PHP: php examples/pusher/publish.php \"Deploy finished\""
	@echo "  the PHP side logs to build/room-php.log"
	@echo
	@php -S 127.0.0.1:8000 examples/pusher/auth_server.php >build/room-php.log 2>&1 & php_pid=$$!; \
	  trap 'kill $$php_pid 2>/dev/null' EXIT; \
	  build/release/src/server/windlass-server --config deploy/windlass.toml --host 127.0.0.1 --port 8080

echo: build
	@build/release/examples/echo/windlass-echo --host 127.0.0.1 --port 9001

test: test-deps
	@scripts/run-tests.sh all

test-quick: test-deps
	@scripts/run-tests.sh release

asan: test-deps
	@scripts/run-tests.sh asan

tsan: test-deps
	@scripts/run-tests.sh tsan

fuzz-smoke: test-deps
	@scripts/run-tests.sh fuzz

FUZZ_SECONDS ?= 300
fuzz: test-deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

bench: test-deps build
	@bench/side_by_side.sh

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format-14 -i

format-check:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format-14 --dry-run --Werror

clean:
	rm -rf build
