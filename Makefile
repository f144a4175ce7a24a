# siyu — GNU Makefile.
#
#   make            build ./siyu
#   make run        install what is missing, build, serve the demo bank on 127.0.0.1:8080
#   make test       install what is missing, build, run every test (unit, end-to-end, fuzz smoke)
#   make test SANITIZE=1   the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz       build the libFuzzer targets (clang)
#   make bench      run the benchmarks in bench/

CC      ?= cc
# Short build lines; `make V=1` shows the full commands.
ifeq ($(V),1)
  Q :=
  say = @true
else ifneq ($(findstring s,$(firstword -$(MAKEFLAGS))),)
  Q := @
  say = @true
else
  Q := @
  say = @printf '  %-6s %s\n'
endif
PKGS    := libmicrohttpd jansson sqlite3 libsodium libcurl
TESTPKGS := cmocka

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
               -Wno-unused-parameter -pthread -Isrc -Ibuild/gen
ifeq ($(SANITIZE),1)
  CONFIG  := asan
  OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else
  CONFIG  := release
  OPT     := -O2 -g
endif
BUILD   := build/$(CONFIG)
CFLAGS  := $(CFLAGS_BASE) $(OPT) $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lroaring -lcsv -pthread -lm
LDFLAGS := $(OPT)

SRCS     := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/migrations.o
MIGRATIONS := $(sort $(wildcard src/migrations/*.sql))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
E2E_SRCS  := $(wildcard tests/e2e/test_*.c)
TEST_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%) $(E2E_SRCS:tests/e2e/%.c=$(BUILD)/tests/%)
TEST_CFLAGS := $(CFLAGS) $(shell pkg-config --cflags $(TESTPKGS) 2>/dev/null) -Itests
TEST_LIBS   := $(LDLIBS) $(shell pkg-config --libs $(TESTPKGS) 2>/dev/null)

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS := $(CFLAGS_BASE) -O1 -g -fsanitize=fuzzer,address,undefined $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# the library, instrumented once for every fuzz target (kept: not intermediates)
FUZZ_OBJS := $(LIB_SRCS:src/%.c=build/fuzz/obj/%.o) build/fuzz/obj/migrations.o

.PHONY: all siyu run test deps fuzz bench clean
.SECONDARY: $(FUZZ_OBJS)

all: siyu

siyu: $(BUILD)/siyu
	@cp -f $< $@

$(BUILD)/siyu: $(BUILD)/obj/main.o $(LIB_OBJS)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(say) CC $<
	$(Q)$(CC) $(CFLAGS) -MMD -c -o $@ $<

build/gen/migrations.c: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p build/gen
	$(say) GEN $@
	$(Q)scripts/embed-migrations.sh $@ $(MIGRATIONS)

$(BUILD)/obj/migrations.o: build/gen/migrations.c | $(BUILD)/obj
	$(say) CC $<
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj $(BUILD)/tests build/fuzz build/fuzz/obj:
	@mkdir -p $@

$(BUILD)/tests/%: tests/unit/%.c tests/testutil.h tests/unit/store_fixture.h tests/fuzz/fuzz_json.h $(LIB_OBJS) | $(BUILD)/tests
	$(say) TEST $@
	$(Q)$(CC) $(TEST_CFLAGS) -o $@ $< $(LIB_OBJS) $(TEST_LIBS)

$(BUILD)/tests/%: tests/e2e/%.c tests/testutil.h tests/e2e/harness.h | $(BUILD)/tests
	$(say) TEST $@
	$(Q)$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS)

build/fuzz/obj/%.o: src/%.c $(wildcard src/*.h) | build/fuzz/obj
	$(say) CC-FUZZ $<
	$(Q)clang $(subst -fsanitize=fuzzer,-fsanitize=fuzzer-no-link,$(FUZZ_CFLAGS)) -c -o $@ $<

build/fuzz/obj/migrations.o: build/gen/migrations.c | build/fuzz/obj
	$(say) CC-FUZZ $<
	$(Q)clang $(subst -fsanitize=fuzzer,-fsanitize=fuzzer-no-link,$(FUZZ_CFLAGS)) -c -o $@ $<

build/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(FUZZ_OBJS) | build/fuzz
	$(say) FUZZ $@
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory siyu
	@scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory siyu $(TEST_BINS) $(FUZZ_BINS)
	@tests/run.sh $(BUILD) $(TEST_BINS) -- $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)

bench: deps
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory siyu
	@bench/http.sh

clean:
	rm -rf build siyu

-include $(wildcard $(BUILD)/obj/*.d)
