# Makefile - the README's commands. The build itself is CMake (CMakeLists.txt); this
# file only chains setup, configure, build and run.
#
#   make demo    install missing packages, build, run the live demo (scripts/demo.sh:
#                a coordinator on SQLite, four local workers, the sample suite)
#   make check   install missing packages, build normal + sanitizer builds, run all tests,
#                and build the Release configuration (compile check only)
#   make bench   build and run the placement and end-to-end benchmarks
#   make bench-policies  the standard policy comparison on the simulator (minutes)
#   make bench-live  the balancer on real processes against a pull-queue and the simulator
#   make chaos   the chaos suite: seeded faults against real processes (a few minutes)
#   make fuzz    build the libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make format  clang-format every .c/.h under src/ tests/ bench/
#   make clean   remove the build directories

BUILD_DIR  := build
ASAN_DIR   := build-asan
RELEASE_DIR := build-release
JOBS       ?= 2
CMAKE      ?= cmake
CTEST      ?= ctest

ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.NOTPARALLEL:
.PHONY: all setup build build-asan build-release demo check check-normal check-asan bench bench-policies bench-live chaos fuzz format clean

all: build

setup:
	@scripts/setup.sh

# Configuring every time is cheap and picks up new files (the globs use CONFIGURE_DEPENDS).
build: setup
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDRV_SANITIZE=OFF
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)

build-asan: setup
	$(CMAKE) -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=Debug -DDRV_SANITIZE=ON
	$(CMAKE) --build $(ASAN_DIR) -j$(JOBS)

# Release (-O3, NDEBUG) warns about things the other levels do not (format-truncation):
# make check builds it too, with -Werror as everywhere, and runs nothing from it.
build-release: setup
	$(CMAKE) -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=Release -DDRV_SANITIZE=OFF
	$(CMAKE) --build $(RELEASE_DIR) -j$(JOBS)

demo: build
	scripts/demo.sh $(BUILD_DIR)

check-normal: build
	cd $(BUILD_DIR) && $(CTEST) --output-on-failure -j$(JOBS)

check-asan: build-asan
	cd $(ASAN_DIR) && $(ASAN_ENV) $(CTEST) --output-on-failure -j$(JOBS)

# One build after the other (see .NOTPARALLEL): each already uses -j$(JOBS).
check: check-normal check-asan build-release

bench: build
	./$(BUILD_DIR)/bench/placement
	bench/e2e.sh $(BUILD_DIR)

bench-policies: build
	bench/policies.sh $(BUILD_DIR)

# bench/live.sh: real coordinator and workers of different speeds (about 5 minutes).
bench-live: build
	bench/live.sh $(BUILD_DIR)

# The chaos suite (tests/chaos/chaos.py): 3,000 real tests under a seeded schedule of
# worker kills, freezes, drains, coordinator kills and a connection cut; CHAOS_SEED.
CHAOS_SEED ?= 1
chaos: build
	/usr/bin/python3 tests/chaos/chaos.py --drover $(BUILD_DIR)/drover --seed $(CHAOS_SEED)

# Each fuzz target for FUZZ_SECONDS (libFuzzer with ASan+UBSan, clang).
FUZZ_DIR     := build-fuzz
FUZZ_SECONDS ?= 30
fuzz:
	@scripts/setup.sh --fuzz
	$(CMAKE) -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DDRV_SANITIZE=ON -DDRV_FUZZ=ON
	$(CMAKE) --build $(FUZZ_DIR) -j$(JOBS)
	for f in $(FUZZ_DIR)/fuzz_*; do mkdir -p $(FUZZ_DIR)/corpus/$${f##*/}; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 $(FUZZ_DIR)/corpus/$${f##*/} examples tests/fuzz/seeds || exit 1; done

format:
	@command -v clang-format >/dev/null 2>&1 || \
		{ echo "make format: clang-format not found (apt-get install clang-format)" >&2; exit 1; }
	find src tests bench \( -name '*.c' -o -name '*.h' \) -print0 2>/dev/null | \
		xargs -0 -r clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(RELEASE_DIR)
