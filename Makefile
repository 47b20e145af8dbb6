# streamlua: two commands.
#   make run    installs what is missing, builds, runs examples/demo.lua
#   make test   installs what is missing, builds, runs every test
# Anything else here is a step of those two.

BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: run test deps test-deps build bench clean

run: deps build
	./$(BUILD)/streamlua examples/demo.lua

test: test-deps
	./scripts/test.sh

deps:
	@./scripts/deps.sh

test-deps:
	@./scripts/deps.sh test

build:
	cmake -S . -B $(BUILD) -DSL_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

bench: deps
	./bench/run.sh

clean:
	rm -rf build build-asan build-tsan build-bench
