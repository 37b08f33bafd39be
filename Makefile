# collbench. `make run` and `make test` install what they need first (Debian).
# SANITIZE=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer into build-san/.
# `make fuzz` builds the libFuzzer harnesses of tests/fuzz with clang into build-fuzz/.

# CFLAGS and LDFLAGS are the user's (`make CFLAGS=-O1` builds); what
# collbench needs is in CB_CFLAGS, added to them, never replaced by them.
CC      := mpicc
PKGS    := hwloc libibverbs librdmacm
CFLAGS  ?= -O2 -g
# baseline x86-64 only: the Soft-RoCE test VM's CPU has no SSE4/AVX
CB_CFLAGS := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -MMD -MP -Isrc -I.
# pkg-config's own message says which package is missing; install-deps installs them
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
PKG_STATUS := $(shell pkg-config --exists --print-errors $(PKGS) 2>&1 && echo ok)
ifneq ($(lastword $(PKG_STATUS)),ok)
$(error pkg-config cannot find $(PKGS): $(PKG_STATUS) -- run scripts/install-deps (or set PKG_CONFIG_PATH))
endif
endif
CB_CFLAGS += $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lm -lpthread
# rdma-core 48+ reports XDR and later speeds in ibv_port_attr.active_speed_ex
# (Debian 12's 44 does not have it): a compile probe, no configure step
ifeq ($(shell printf '\043include <infiniband/verbs.h>\nunsigned f(struct ibv_port_attr *a) { return a->active_speed_ex; }\n' | $(CC) -x c -fsyntax-only - 2>/dev/null && echo y),y)
CB_CFLAGS += -DCB_HAVE_ACTIVE_SPEED_EX
endif

ifeq ($(SANITIZE),1)
BUILD   := build-san
CB_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CB_LDFLAGS := -fsanitize=address,undefined
else
BUILD   := build
endif
CB_CFLAGS += -I$(BUILD)
ALL_CFLAGS = $(CB_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(CB_LDFLAGS) $(LDFLAGS)
CB_VERSION := $(shell scripts/version)

ENGINE_SRC := $(wildcard src/*.c src/*/*.c) $(wildcard bench/*.c)
ENGINE_SRC := $(filter-out src/main.c,$(ENGINE_SRC))
ENGINE_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(ENGINE_SRC))
MAIN_OBJ   := $(BUILD)/obj/src/main.o
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BIN        := $(BUILD)/collbench
PERF_NAMES := all_reduce_perf all_gather_perf reduce_scatter_perf alltoall_perf \
              broadcast_perf reduce_perf sendrecv_perf
# nccl-tests' names, and its MPI builds' names (NAME_SUFFIX=_mpi, as CloudAI runs them)
ALIASES    := $(PERF_NAMES) $(addsuffix _mpi,$(PERF_NAMES))

.PHONY: all deps run test unit bench bench-verbs bench-rails bench-faults docs clean install fuzz FORCE
all: $(BIN) $(addprefix $(BUILD)/,$(ALIASES)) $(UNIT_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# rewritten only when the version changes, so main.o rebuilds only then
$(BUILD)/version.h: FORCE
	@mkdir -p $(BUILD)
	@echo '#define CB_VERSION "$(CB_VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(MAIN_OBJ): $(BUILD)/version.h

# `collbench model --scale`'s set-up terms: the fits recorded by
# scripts/bench-scale and scripts/bench-connect, never copied by hand
SETUP_DATA := results/measured/bench-scale.json results/measured/verbs-connect.json
$(BUILD)/measured_setup.h build-fuzz/measured_setup.h: scripts/lib/setup_fit.py $(SETUP_DATA)
	@mkdir -p $(dir $@)
	/usr/bin/python3 scripts/lib/setup_fit.py header $@ $(SETUP_DATA)
$(BUILD)/obj/src/tools/cmd_model.o: $(BUILD)/measured_setup.h
build-fuzz/obj/src/tools/cmd_model.o: build-fuzz/measured_setup.h

$(BIN): $(ENGINE_OBJ) $(MAIN_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# nccl-tests' binary names: the subcommand is taken from the name
$(addprefix $(BUILD)/,$(ALIASES)): $(BIN)
	ln -sf collbench $@

$(BUILD)/tests/%: tests/unit/%.c $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS) -lcmocka

deps:
	@scripts/install-deps

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run-default

test: deps
	@$(MAKE) --no-print-directory all
	@tests/run-all $(if $(filter 1,$(SANITIZE)),--sanitize)

unit: all
	@tests/run-all --unit-only $(if $(filter 1,$(SANITIZE)),--sanitize)

# Benchmarks, not tests: collbench vs MPI per collective, every algorithm vs
# MPI at 2, 4 and 8 ranks, the cost model vs measured times, connection
# set-up and buffers per rank at 2 to 64 ranks, how well planted faults
# are named (needs root: network namespaces), and what two rails and a
# transport per peer give in two Soft-RoCE VMs (bench-rails). bench-shm, bench-algos,
# bench-model and bench-scale record their tables with the run's date,
# commit and machine under results/measured/, and the docs' tables are
# regenerated from them.
bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench-shm --record
	@scripts/bench-algos --record
	-@scripts/bench-model --record
	-@scripts/bench-scale --record
	-@scripts/bench-faults
	-@scripts/bench-rails --record
	@scripts/docs-tables

bench-faults: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench-faults

bench-verbs: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench-verbs --record
	@scripts/docs-tables

bench-rails: deps
	@$(MAKE) --no-print-directory all
	@scripts/bench-rails --record
	@scripts/docs-tables

# The measured tables in docs/ from results/measured/ (scripts/docs-tables).
docs:
	@scripts/docs-tables

# make install [PREFIX=/usr/local] [DESTDIR=staging]: the binary and
# nccl-tests' names in bin/, the Slurm and systemd templates under
# share/collbench/scripts/templates, the operator tools as collbench-compare,
# collbench-nightly, collbench-validate-rack (share/collbench holds them with
# their libraries, profiles and a build/collbench link to the binary, so they
# run outside the source tree and write under the current folder's results/),
# the man page, bash completion, the manual and the JSON schema.
PREFIX  ?= /usr/local
BINDIR  := $(DESTDIR)$(PREFIX)/bin
SHARE   := $(DESTDIR)$(PREFIX)/share/collbench
MANDIR  := $(DESTDIR)$(PREFIX)/share/man/man1
COMPDIR := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
DOCDIR  := $(DESTDIR)$(PREFIX)/share/doc/collbench
TOOLS   := compare nightly validate-rack
install: $(BIN)
	install -d $(BINDIR) $(SHARE)/scripts/lib $(SHARE)/build $(SHARE)/results/profiles $(MANDIR) $(COMPDIR) $(DOCDIR)
	install -m 755 $(BIN) $(BINDIR)/collbench
	for a in $(ALIASES); do ln -sf collbench $(BINDIR)/$$a; done
	install -m 755 $(addprefix scripts/,$(TOOLS)) $(SHARE)/scripts/
	install -m 644 scripts/lib/*.py $(SHARE)/scripts/lib/
	install -d $(SHARE)/scripts/templates
	for f in scripts/templates/*; do install -m $$(stat -c %a $$f) $$f $(SHARE)/scripts/templates/; done
	install -m 644 results/profiles/*.json $(SHARE)/results/profiles/
	install -m 644 results/nightly.example.json $(SHARE)/results/
	ln -sf ../../../bin/collbench $(SHARE)/build/collbench
	for t in $(TOOLS); do ln -sf ../share/collbench/scripts/$$t $(BINDIR)/collbench-$$t; done
	install -m 644 docs/collbench.1 $(MANDIR)/collbench.1
	for a in $(ALIASES); do echo '.so man1/collbench.1' > $(MANDIR)/$$a.1; done
	install -m 644 scripts/collbench-completion.bash $(COMPDIR)/collbench
	for a in $(ALIASES); do ln -sf collbench $(COMPDIR)/$$a; done
	install -m 644 docs/*.md docs/collbench-run.schema.json $(DOCDIR)/

# libFuzzer harnesses: the engine again, compiled by clang (through mpicc)
# with coverage for the fuzzer, under ASan + UBSan; tests/integration/fuzz.sh
# runs them. No -Werror here: clang warns where gcc does not (partly filled
# designated initializers, gcc's pragmas), and the -Werror build is gcc's.
FUZZ_CFLAGS := -O1 -g -std=c11 -Wall -Wextra -D_GNU_SOURCE -MMD -MP -Isrc -I. -Ibuild-fuzz \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -fno-omit-frame-pointer \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ := $(patsubst %.c,build-fuzz/obj/%.o,$(ENGINE_SRC))
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build-fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz: $(FUZZ_BIN)

build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	OMPI_CC=clang $(CC) $(FUZZ_CFLAGS) -c -o $@ $<

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	OMPI_CC=clang $(CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LDLIBS)

clean:
	rm -rf build build-san build-fuzz

-include $(shell find build build-san build-fuzz -name '*.d' 2>/dev/null)
