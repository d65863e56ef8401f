# autodata - build, test, demo, bench, fuzz.  See README.md.
#
#   make            build build/autodata (BUILD=dir to build elsewhere) (release, -O2)
#   make demo       install missing packages, build, run examples/sim.yaml end to end
#   make test       install missing packages (and Chromium for the report test), layering and
#                   format checks, ASan+UBSan build, unit + e2e (against a throwaway PostgreSQL
#                   server it starts and stops: scripts/pg-test-server.sh)
#   make layers     check module includes against src/LAYERS (scripts/check-layers.sh)
#   make bench      client / store / sim-scale benchmarks (bench/)
#   make fuzz       libFuzzer targets in fuzz/, FUZZ_SECONDS each (default 60)
#   make format     clang-format (.clang-format) every .c/.h in src/ tests/unit/ bench/ fuzz/
#   make format-check   fail, listing the files, when any of them is not formatted
#
# Sources are found by wildcard: a new .c under src/ is built without editing this file.
# src/cli/main.c is the only file with main(); everything else goes in the library.

CC       ?= cc
PKGS     := libcurl jansson yaml-0.1 sqlite3 libxxhash libzstd libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -ljansson -lyaml -lsqlite3 -lxxhash -lzstd -lpq)
WARN     := -Wall -Wextra -Wpedantic -Wshadow
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) $(WARN) -g
CFLAGS   ?= -O2
LDLIBS   := $(PKG_LIBS) -lm -lpthread
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/cli/main.c'))
MAIN_SRC := src/cli/main.c
HDRS     := $(shell find src -name '*.h')
# Every .c in tests/unit/ (test_*.c and helpers.c) goes into the one unit-test binary.
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FMT_SRC  := $(sort $(shell find src tests/unit bench fuzz -name '*.[ch]' ! -path 'fuzz/corpus/*'))
CLANG_FORMAT ?= clang-format

BUILD    ?= build
REL_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SAN_OBJ  := $(LIB_SRC:%.c=$(BUILD)/asan/obj/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/asan/obj/%.o)

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GITREV   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DEFS     := -DAD_VERSION=\"$(VERSION)\" -DAD_GITREV=\"$(GITREV)\"

FUZZ_SECONDS ?= 60

.PHONY: all deps demo test unit e2e bench fuzz clean asan format format-check layers

all: $(BUILD)/autodata

deps:
	@scripts/install-deps.sh

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) $(DEFS) $(CFLAGS_EXTRA) -c $< -o $@

$(BUILD)/asan/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O1 $(SAN) $(DEFS) $(CFLAGS_EXTRA) -c $< -o $@

$(BUILD)/autodata: $(REL_OBJ) $(BUILD)/obj/$(MAIN_SRC:.c=.o)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/asan/autodata: $(SAN_OBJ) $(BUILD)/asan/obj/$(MAIN_SRC:.c=.o)
	$(CC) $(SAN) $^ -o $@ $(LDLIBS)

$(UNIT_OBJ): $(wildcard tests/unit/*.h)

$(BUILD)/asan/unit_tests: $(SAN_OBJ) $(UNIT_OBJ)
	$(CC) $(SAN) $^ -o $@ $(LDLIBS) -lcriterion

asan: $(BUILD)/asan/autodata $(BUILD)/asan/unit_tests

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

unit: $(BUILD)/asan/unit_tests
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/asan/unit_tests -j2 --timeout 120

layers:
	@scripts/check-layers.sh

# The release build too: t_optimize.sh's 30-iteration study runs on it (AUTODATA_RELEASE).
e2e: $(BUILD)/asan/autodata $(BUILD)/autodata
	AUTODATA=$(BUILD)/asan/autodata AUTODATA_RELEASE=$(BUILD)/autodata tests/e2e/run.sh

test: deps
	@AUTODATA_TEST=1 scripts/install-deps.sh
	@$(MAKE) --no-print-directory layers
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory asan
	@pgdir=$$(mktemp -d /tmp/autodata-pg.XXXXXX); \
	trap 'scripts/pg-test-server.sh stop "'"$$pgdir"'" >/dev/null 2>&1' EXIT INT TERM; \
	url=$$(scripts/pg-test-server.sh start "$$pgdir") || exit 1; \
	echo "test: PostgreSQL test server in $$pgdir (stopped at the end)"; \
	export AUTODATA_TEST_PG_URL="$$url" AUTODATA_TEST_PG_REQUIRED=1; \
	$(MAKE) --no-print-directory unit && $(MAKE) --no-print-directory e2e

bench: deps all
	AUTODATA_BENCH=1 scripts/install-deps.sh
	bench/run.sh

$(BUILD)/fuzz/%: fuzz/%.c $(LIB_SRC) $(HDRS)
	@mkdir -p $(BUILD)/fuzz
	clang $(CFLAGS_BASE) -O1 $(DEFS) -fsanitize=fuzzer,address,undefined $< $(LIB_SRC) -o $@ $(LDLIBS)

fuzz: deps $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)
	@for f in $(FUZZ_SRC:fuzz/%.c=%); do \
	  mkdir -p $(BUILD)/fuzz/corpus-$$f; \
	  echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
	  $(BUILD)/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    $(BUILD)/fuzz/corpus-$$f fuzz/corpus/$$f 2>$(BUILD)/fuzz/$$f.log || { tail -40 $(BUILD)/fuzz/$$f.log; exit 1; }; \
	  tail -1 $(BUILD)/fuzz/$$f.log; \
	done

format:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "format: $(CLANG_FORMAT) not found (make deps)"; exit 1; }
	$(CLANG_FORMAT) -i $(FMT_SRC)

# One clang-format per file (in parallel) so that every unformatted file is named.
format-check:
	@command -v $(CLANG_FORMAT) >/dev/null || { echo "format-check: $(CLANG_FORMAT) not found (make deps)"; exit 1; }
	@bad=$$(printf '%s\n' $(FMT_SRC) | xargs -P8 -I{} sh -c \
	  '$(CLANG_FORMAT) --dry-run --Werror "{}" >/dev/null 2>&1 || echo "{}"' | sort); \
	if [ -n "$$bad" ]; then \
	  echo "format-check: $$(echo "$$bad" | wc -l) of $(words $(FMT_SRC)) files not formatted (make format):"; \
	  echo "$$bad" | sed 's/^/  /'; exit 1; \
	fi; \
	echo "format-check: $(words $(FMT_SRC)) files formatted"

clean:
	rm -rf build
