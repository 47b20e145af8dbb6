# streamlua: two commands, and a third for fuzzing.
#   make run    installs what is missing, builds, runs examples/demo.lua
#   make test   installs what is missing, builds, runs every test
#   make fuzz   installs clang and libFuzzer if missing, builds the fuzz
#               harnesses, runs each for FUZZ_SECONDS (spec/fuzz/README.md)
# Anything else here is a step of those.

BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 60

.PHONY: run test fuzz deps test-deps fuzz-deps bench-deps build bench clean

run: deps build
	./$(BUILD)/streamlua examples/demo.lua

test: test-deps
	./scripts/test.sh

fuzz: fuzz-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

deps:
	@./scripts/deps.sh

test-deps:
	@./scripts/deps.sh test

fuzz-deps:
	@./scripts/deps.sh fuzz

build:
	cmake -S . -B $(BUILD) -DSL_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

bench: bench-deps
	./bench/run.sh

bench-deps:
	@./scripts/deps.sh bench

clean:
	rm -rf build build-asan build-tsan build-bench build-fuzz
