# vmengine build.
#   make            build everything into build/
#   make run        install deps, build, start a solo engine on 127.0.0.1:3260
#   make test       install deps, build, run every test (unit tests under ASan+UBSan)
#   make bench      vmengine vs Debian's tgt, same run, ratios printed
#   make install    PREFIX=/usr/local DESTDIR=
#   make format     apply .clang-format to every C file
#   make clean

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
ASAN_BUILD ?= build-asan

CC ?= cc
CSTD := -std=c11 -D_GNU_SOURCE
WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
OPT ?= -O2 -g
PKGS := libqb libconfig
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = $(CSTD) $(OPT) $(WARN) -I. $(PKG_CFLAGS) -pthread -MMD -MP $(EXTRA_CFLAGS)
LIBS = $(PKG_LIBS) -laio -lcrypto -pthread

# Libraries, one per folder, in link order (callers first).
LIB_DIRS := iscsi-tgt vol iscsi util
SRC_iscsi-tgt := $(wildcard iscsi-tgt/*.c)
SRC_vol := $(wildcard vol/*.c)
SRC_iscsi := $(wildcard iscsi/*.c)
SRC_util := $(wildcard util/*.c)
ENGINE_SRC := $(filter-out engine/vmctl.c,$(wildcard engine/*.c))

UNIT_SRC := $(wildcard tests/unit/*/*_ut.c)
TOOL_SRC := $(wildcard tests/tools/*.c)

define objs
$(patsubst %.c,$(1)/%.o,$(2))
endef

LIBS_A := $(foreach d,$(LIB_DIRS),$(BUILD)/lib$(d).a)
ASAN_LIBS_A := $(foreach d,$(LIB_DIRS),$(ASAN_BUILD)/lib$(d).a)
UNIT_BINS := $(patsubst tests/unit/%.c,$(ASAN_BUILD)/tests/unit/%,$(UNIT_SRC))
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOL_SRC))

.PHONY: all run test unit bench install clean format format-check deps deps-build
all: $(BUILD)/vmengined $(TOOL_BINS)

deps:
	@./deploy/deps.sh

deps-build:
	@./deploy/deps.sh --build-only

# ---- normal build ----
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

define lib_rule
$(BUILD)/lib$(1).a: $(call objs,$(BUILD),$(SRC_$(1)))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
$(ASAN_BUILD)/lib$(1).a: $(call objs,$(ASAN_BUILD),$(SRC_$(1)))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach d,$(LIB_DIRS),$(eval $(call lib_rule,$(d))))

$(BUILD)/vmengined: $(call objs,$(BUILD),$(ENGINE_SRC)) $(LIBS_A)
	$(CC) -o $@ $^ $(LIBS)

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIBS_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBS_A) $(LIBS)

# ---- sanitizer build for unit tests ----
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
$(ASAN_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -O1 $(SAN) -c -o $@ $<

# A unit test links only its own folder's library and those below it, so a
# folder under construction never breaks another folder's tests.
UT_DEPS_util := util
UT_DEPS_iscsi := iscsi util
UT_DEPS_vol := vol util
UT_DEPS_iscsi-tgt := iscsi-tgt vol iscsi util
ut_libs = $(foreach d,$(UT_DEPS_$(1)),$(ASAN_BUILD)/lib$(d).a)
define ut_rule
$(ASAN_BUILD)/tests/unit/$(1)/%: tests/unit/$(1)/%.c $(call ut_libs,$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_ALL) -O1 $$(SAN) -o $$@ $$< $(call ut_libs,$(1)) $$(LIBS) -lcunit
endef
$(foreach d,$(LIB_DIRS),$(eval $(call ut_rule,$(d))))

unit: $(UNIT_BINS)
	@./tests/unit/run.sh $(UNIT_BINS)

# ---- the two commands ----
run: deps-build all
	@./engine/run-solo.sh $(BUILD)/vmengined

test: deps
	@$(MAKE) --no-print-directory all unit
	@./tests/run-system.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory all
	@./tests/perf/bench.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/vmengine
	install -m 0755 $(BUILD)/vmengined $(DESTDIR)$(PREFIX)/sbin/vmengined
	install -m 0644 engine/vmengine.conf.example $(DESTDIR)$(PREFIX)/share/vmengine/

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@bad=$$(for f in $$(git ls-files '*.c' '*.h'); do \
		clang-format --dry-run -Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "not clang-formatted:"; echo "$$bad"; exit 1; fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

-include $(shell find $(BUILD) $(ASAN_BUILD) -name '*.d' 2>/dev/null)
