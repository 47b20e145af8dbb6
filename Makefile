# streamlua: two commands, and a third for fuzzing.
#   make run    installs what is missing, builds, runs examples/demo.lua
#   make test   installs what is missing, builds, runs every test: the
#               x86-64 passes, then the ARM pass
#   make test-arm  the ARM pass alone: cross builds for arm64 and armhf,
#               their C tests and Lua specs under qemu-user
#   make fuzz   installs clang and libFuzzer if missing, builds the fuzz
#               harnesses, runs each for FUZZ_SECONDS (spec/fuzz/README.md)
# Installing:
#   make install     the program, libraries, headers, pkg-config files and
#                    the Lua module into PREFIX (under DESTDIR if set)
#   make uninstall   removes what make install put there
#   make rock        installs the rock from this checkout with luarocks
#                    (into ROCK_TREE, default the user's tree ~/.luarocks)
# Anything else here is a step of those.

BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 60
PREFIX ?= /usr/local
DESTDIR ?=
ROCK_TREE ?=
ROCK_SPEC = rocks/streamlua-scm-1.rockspec
# what the program and an install need: the program, the module, the
# libraries (not the C tests, fuzz harnesses and benchmarks)
PROGRAM_TARGETS = streamlua streamlua_module streamlua_static
MAKEFLAGS += --no-print-directory

.PHONY: run test test-arm fuzz deps test-deps arm-deps fuzz-deps bench-deps rock-deps build \
	program bench clean install uninstall rock

run: deps program
	./$(BUILD)/streamlua examples/demo.lua

# the ARM pass's packages too (arm-deps after test-deps): a machine that
# cannot install them fails here, it does not skip the pass
test: arm-deps
	./scripts/test.sh

test-arm: arm-deps
	./scripts/test-arm.sh

fuzz: fuzz-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

deps:
	@./scripts/deps.sh

test-deps:
	@./scripts/deps.sh test

# after test-deps: one apt-get at a time, even under make -j
arm-deps: test-deps
	@./scripts/deps.sh arm

fuzz-deps:
	@./scripts/deps.sh fuzz

rock-deps:
	@./scripts/deps.sh rock

# Every target, warnings as errors, as make test builds it.
build:
	cmake -S . -B $(BUILD) -DSL_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# PROGRAM_TARGETS, quietly: cmake's output goes to $(BUILD)/build.log and is
# shown if the build fails. A new build dir is configured without -Werror;
# one make test configured keeps its settings (no rebuild of everything).
program:
	@mkdir -p $(BUILD) && rm -f $(BUILD)/build.log
	@echo "streamlua: building $(BUILD)/streamlua (log: $(BUILD)/build.log)"
	@{ if [ ! -f $(BUILD)/CMakeCache.txt ]; then \
	     cmake -S . -B $(BUILD) -DSL_WERROR=OFF $(CMAKE_FLAGS); \
	   elif [ -n "$(CMAKE_FLAGS)" ]; then \
	     cmake -S . -B $(BUILD) $(CMAKE_FLAGS); \
	   fi && \
	   cmake --build $(BUILD) -j$(JOBS) --target $(PROGRAM_TARGETS); \
	 } >$(BUILD)/build.log 2>&1 || \
	 { tail -60 $(BUILD)/build.log; echo "streamlua: the build failed, see $(BUILD)/build.log" >&2; \
	   exit 1; }

install: deps program
	@./scripts/install.sh install $(BUILD) $(PREFIX)

uninstall:
	@./scripts/install.sh uninstall $(BUILD) $(PREFIX)

# luarocks builds in build.luarocks/ from this checkout; the rockspec it
# records names this checkout as the rock's source.
rock: rock-deps
	@mkdir -p $(BUILD)
	sed 's|^  url = .*|  url = "git+file://$(CURDIR)",|' $(ROCK_SPEC) >$(BUILD)/streamlua-scm-1.rockspec
	luarocks --lua-version 5.4 $(if $(ROCK_TREE),--tree $(ROCK_TREE),--local) make \
	  $(BUILD)/streamlua-scm-1.rockspec

bench: bench-deps
	./bench/run.sh

bench-deps:
	@./scripts/deps.sh bench

clean:
	rm -rf build build-asan build-tsan build-bench build-fuzz build.luarocks \
	  build-arm64 build-armhf build-cross
