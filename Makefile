# Thin wrapper over CMake. Every target first installs the Debian packages it needs.
#   make demo         build, start shmringd + nginx, send traffic through every plugin, stop
#   make test         the format check, then every test: unit, daemon, Lua, end-to-end, fuzz
#                     (ASan/UBSan build)
#   make fuzz         only the fuzz targets, each FUZZ_SECONDS (default 600) from a random seed
#   make lint         fail if a C file differs from what clang-format (.clang-format) makes of it
#   make format       rewrite every C file as clang-format makes it
#   make bench        every benchmark; figures printed and written under bench/results/
#   make deb          the Debian package, build/deb/shmring_<version>_<arch>.deb
JOBS ?= $(shell nproc)
BUILD ?= build/release
TEST_BUILD ?= build/test
FUZZ_SECONDS ?= 60
# make test's fuzz runs start from a fixed seed, so CI repeats what a local run saw.
FUZZ_SEED ?= 1
# Every C file of the tree, but generated ones (their generator writes them; a hand format
# would be undone by the next run) and the plugin template, whose @NAME@ places are not C
# (it is kept as clang-format makes a generated project of it).
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' ':!:tests/jwt/fixtures.h' ':!:sdk/template/*')

.PHONY: all build lint test fuzz deb demo serve bench bench-ring bench-daemon bench-plugins bench-hello bench-log bench-e2e clean format

all: build

build:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMRING_WERROR=OFF \
	  -DSHMRING_SANITIZE=OFF -DSHMRING_FUZZ=OFF >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

lint:
	@scripts/deps.sh lint
	clang-format --dry-run --Werror $(FORMAT_FILES)

# The test build uses clang for libFuzzer, with ASan/UBSan and warnings as errors.
TEST_CMAKE = CC=clang cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSHMRING_SANITIZE=ON \
  -DSHMRING_WERROR=ON -DSHMRING_FUZZ=ON -DSHMRING_FUZZ_SECONDS=$(FUZZ_SECONDS) \
  -DSHMRING_FUZZ_SEED=$(FUZZ_SEED)

test: lint
	@scripts/deps.sh test
	$(TEST_CMAKE) >/dev/null
	cmake --build $(TEST_BUILD) -j$(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j$(JOBS)

# Fuzzing to find new inputs rather than to gate a change: random seeds, longer runs.
fuzz: FUZZ_SEED = 0
fuzz: FUZZ_SECONDS = 600
fuzz:
	@scripts/deps.sh test
	$(TEST_CMAKE) >/dev/null
	cmake --build $(TEST_BUILD) -j$(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j$(JOBS) -L fuzz

# The package is the install of a tree configured for /usr: its paths are compiled in.
deb:
	@scripts/deps.sh build
	cmake -S . -B build/deb -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	  -DSHMRING_TESTS=OFF -DSHMRING_BENCH=OFF -DSHMRING_WERROR=OFF -DSHMRING_SANITIZE=OFF \
	  -DSHMRING_FUZZ=OFF >/dev/null
	cmake --build build/deb -j$(JOBS)
	cd build/deb && cpack -G DEB

demo: build
	@scripts/deps.sh demo
	scripts/demo.sh $(BUILD)

serve: build
	@scripts/deps.sh demo
	scripts/demo.sh $(BUILD) --serve $(PORT)

bench-ring: build
	@mkdir -p bench/results
	$(BUILD)/bench/bench_ring --json bench/results/ring.json

bench-daemon: build
	@mkdir -p bench/results
	$(BUILD)/bench/bench_daemon --json bench/results/daemon.json

bench-plugins: build
	@mkdir -p bench/results
	$(BUILD)/bench/bench_plugins --json bench/results/plugins.json
	$(BUILD)/bench/bench_jwt --json bench/results/jwt.json

bench-hello: build
	@scripts/deps.sh bench
	@mkdir -p bench/results
	python3 bench/hello/bench_hello.py $(BUILD)

bench-log: build
	@scripts/deps.sh bench
	@mkdir -p bench/results
	python3 bench/log/bench_log.py $(BUILD)

# The headline: every plugin through shmring, a socket plugin server and native Lua.
# PROFILE=1 adds perf + jit.p profiles of every shmring cell under bench/results/.
bench-e2e: build
	@scripts/deps.sh bench
	@mkdir -p bench/results
	PROFILE=$(PROFILE) python3 bench/e2e/bench_e2e.py $(BUILD)

bench: bench-ring bench-daemon bench-plugins bench-hello bench-log bench-e2e

clean:
	rm -rf build

format:
	clang-format -i $(FORMAT_FILES)
