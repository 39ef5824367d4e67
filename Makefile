# dldl - one plain Makefile.  make | make test | make test-asan | make golden |
# make fuzz | make clean
#
# Layout (processing order): grammar/ -> compiler/ -> codegen/ -> runtime/,
# common/ is shared by all.  Generated parser/lexer go to build/, never to git.
# B is the build directory and BIN where dldlc and dldlrun go: build/ and the
# repository root for the normal build, build-asan/ for both in the sanitizer
# build (make test-asan), which never touches build/ or ./dldlc.

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
# Warnings: all and extra; unused parameters are common in op tables and
# callbacks, so that one is off.
WARN    = -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
# WERROR=1 (CI) makes any warning in our own sources an error; the flex and
# bison output (rules below) is compiled without our warnings and stays out.
ifeq ($(WERROR),1)
WARN   += -Werror
endif
B      ?= build
BIN    ?= .
DLDLC   = $(BIN)/dldlc
DLDLRUN = $(BIN)/dldlrun
CPPFLAGS += -D_GNU_SOURCE -I$(B) -I.
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(CPPFLAGS) -MMD -MP

COMMON_SRC   = $(wildcard common/*.c)
GRAMMAR_SRC  = $(wildcard grammar/*.c)
COMPILER_SRC = $(filter-out compiler/main.c,$(wildcard compiler/*.c))
CODEGEN_SRC  = $(wildcard codegen/*.c)
RUNTIME_SRC  = $(filter-out runtime/main.c runtime/comm_mpi.c,$(wildcard runtime/*.c))

GEN_OBJ      = $(B)/grammar/parser.o $(B)/grammar/lexer.o
COMMON_OBJ   = $(COMMON_SRC:%.c=$(B)/%.o)
FRONT_OBJ    = $(GEN_OBJ) $(GRAMMAR_SRC:%.c=$(B)/%.o)
COMPILER_OBJ = $(COMPILER_SRC:%.c=$(B)/%.o)
CODEGEN_OBJ  = $(CODEGEN_SRC:%.c=$(B)/%.o)
RUNTIME_OBJ  = $(RUNTIME_SRC:%.c=$(B)/%.o)
# What the runtime takes from codegen/ (codegen/kir_plan.h): the kernel IR's
# decoder, prover and renderer; never the builders, which see the compiler.
KIR_OBJ      = $(patsubst %,$(B)/codegen/%.o,kir kir_io kir_prove kir_plan render prelude)

DLDLC_LIBS   = -lxxhash -ldl -lm
DLDLRUN_LIBS = -ldnnl -lopenblas -lturbojpeg -ljansson -lmatio -lexpat -lpng -lxxhash -ldl -lm -lpthread -fopenmp

# The MPI plugin (runtime/comm_mpi.c, docs/parallel.md): dlopened by dldlrun
# under mpirun only, so dldlrun itself never links MPI.  Built when mpicc is
# there (Debian's openmpi-bin and libopenmpi-dev), else skipped with a note.
MPICC   ?= mpicc
MPI_PLUGIN = $(if $(shell command -v $(MPICC) 2>/dev/null),$(B)/dldl_mpi.so)

all: $(DLDLC) $(DLDLRUN) $(MPI_PLUGIN)
ifeq ($(MPI_PLUGIN),)
	@echo "note: $(MPICC) not found: $(B)/dldl_mpi.so (MPI training) not built; dldlrun runs as one process"
endif

$(B)/dldl_mpi.so: runtime/comm_mpi.c runtime/comm.h
	@mkdir -p $(@D)
	$(MPICC) -std=c11 $(WARN) $(CFLAGS) -fPIC -shared -o $@ $< $(LDFLAGS)

# Install the Debian packages the build needs (only the missing ones).
deps:
	bash scripts/install-deps.sh

$(DLDLC): $(B)/compiler/main.o $(COMPILER_OBJ) $(CODEGEN_OBJ) $(FRONT_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(DLDLC_LIBS) $(LDFLAGS)

$(DLDLRUN): $(B)/runtime/main.o $(RUNTIME_OBJ) $(KIR_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -fopenmp -o $@ $^ $(DLDLRUN_LIBS) $(LDFLAGS)

# One run makes both files (a grouped target: make -j must not run bison twice at once).
$(B)/grammar/parser.c $(B)/grammar/parser.h &: grammar/parser.y
	@mkdir -p $(B)/grammar
	bison -Wall -Werror --defines=$(B)/grammar/parser.h -o $(B)/grammar/parser.c $<

$(B)/grammar/lexer.c $(B)/grammar/lexer.h &: grammar/lexer.l
	@mkdir -p $(B)/grammar
	flex --header-file=$(B)/grammar/lexer.h -o $(B)/grammar/lexer.c $<

# Generated sources: warnings from flex/bison skeletons are not ours.
$(B)/grammar/parser.o: $(B)/grammar/parser.c $(B)/grammar/lexer.h
	$(CC) -std=c11 $(CFLAGS) $(CPPFLAGS) -Igrammar -c -o $@ $<
$(B)/grammar/lexer.o: $(B)/grammar/lexer.c $(B)/grammar/parser.h
	$(CC) -std=c11 $(CFLAGS) $(CPPFLAGS) -Igrammar -Wno-unused-function -c -o $@ $<

$(B)/grammar/%.o: grammar/%.c $(B)/grammar/parser.h $(B)/grammar/lexer.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/runtime/%.o: runtime/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fopenmp -c -o $@ $<

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The CUDA backend (docs/cuda.md).  The emulated device embeds the host
# emulation header as a string; the real device is compiled against the
# toolkit's headers (cuda.h, nvrtc.h, cublas_v2.h, cudnn.h) so that every
# signature is checked, and opens the libraries with dlopen at run time (no
# link against them: dldlrun runs where they are absent).
CUDA_HOME ?= /usr/local/cuda
# Without the headers cuda_real.c builds as a refusal naming them (docs/cuda.md).
CUDA_CPPFLAGS = $(if $(wildcard $(CUDA_HOME)/include/cudnn.h),-isystem $(CUDA_HOME)/include,-DDL_CUDA_NO_HEADERS)
$(B)/runtime/cuda_host_emu.inc: codegen/cuda_host_emu.h
	@mkdir -p $(@D)
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@
$(B)/runtime/cuda_emu.o: $(B)/runtime/cuda_host_emu.inc
$(B)/runtime/cuda_real.o: runtime/cuda_real.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CUDA_CPPFLAGS) -c -o $@ $<
# NCCL (the collectives under mpirun): nccl.h from the toolkit or NVIDIA's
# libnccl-dev, and the toolkit's cuda_runtime.h that it includes; without them
# cuda_nccl.c builds as a refusal naming them.
NCCL_H = $(firstword $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h))
NCCL_OK = $(and $(NCCL_H),$(wildcard $(CUDA_HOME)/include/cuda_runtime.h))
NCCL_CPPFLAGS = $(if $(NCCL_OK),-isystem $(dir $(NCCL_H)) -isystem $(CUDA_HOME)/include,-DDL_CUDA_NO_NCCL)
$(B)/runtime/cuda_nccl.o: runtime/cuda_nccl.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(NCCL_CPPFLAGS) -c -o $@ $<

# ---- tests ---------------------------------------------------------------
# Unit-test binaries: tests/unit/test_<name>.c, each linked with what it needs.
TEST_BINS = $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
$(B)/tests/%: tests/unit/%.c $(COMPILER_OBJ) $(CODEGEN_OBJ) $(FRONT_OBJ) $(COMMON_OBJ) $(RUNTIME_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fopenmp -o $@ $< $(filter %.o,$^) -lcmocka $(DLDLRUN_LIBS)

TOOL_BINS = $(B)/tests/tools/seg_trivial
$(B)/tests/tools/%: tests/tools/%.c $(COMMON_OBJ) $(RUNTIME_OBJ) $(KIR_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fopenmp -o $@ $< $(filter %.o,$^) $(DLDLRUN_LIBS)

# weights_diff: safetensors files compared tensor by tensor (tests/e2e/mpi*.sh)
$(B)/tools/weights_diff: tests/tools/weights_diff.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< -ljansson -lm

test-bins: $(TEST_BINS) $(TOOL_BINS) $(B)/tools/weights_diff

# The whole suite, then the golden and unit sections again under the sanitizers.
test: all $(TEST_BINS) $(TOOL_BINS)
	@sh tests/run.sh
	@$(MAKE) --no-print-directory test-asan

# Rewrite every golden file from the current build; review with git diff.
golden: all
	@UPDATE=1 sh tests/run.sh golden

# ---- sanitizer build -------------------------------------------------------
# make test-asan: dldlc, dldlrun and the unit tests built with AddressSanitizer
# and UBSan into build-asan/ (objects, build-asan/dldlc, build-asan/tests/),
# then tests/run.sh's golden and unit sections (ASAN_SECTIONS) with those
# binaries (DLDL_BIN_DIR, DLDL_TEST_DIR).  The end-to-end trainings are left
# out (too slow instrumented).  The kernels the runtime JIT-compiles are built
# by the system cc at run time, uninstrumented.
# A sanitizer report fails the pass twice over: every report ends its process
# with exit status 86 (UBSan too: -fno-sanitize-recover, halt_on_error), which
# each test checks or sees in its diffed output; and ASan's and LeakSanitizer's
# reports also go to files under build-asan/sanitizer-logs/ (log_path), so one
# from a process whose status nobody looks at still fails the pass, and they
# are printed at the end.  gcc's UBSan runtime is a second library that
# ignores log_path: its reports go to stderr, which the tests capture.
# LeakSanitizer is on: dldlc and the unit tests free what they allocate.
AB  = build-asan
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_LOG = $(AB)/sanitizer-logs
SAN_ENV = ASAN_OPTIONS=log_path=$(abspath $(SAN_LOG))/asan:exitcode=86:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=exitcode=86:print_stacktrace=1:halt_on_error=1
ASAN_SECTIONS ?= golden unit

asan-build:
	@$(MAKE) --no-print-directory B=$(AB) BIN=$(AB) CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" all test-bins

test-asan: asan-build
	@rm -rf $(SAN_LOG); mkdir -p $(SAN_LOG)
	@echo "== sanitizers (ASan, UBSan, LeakSanitizer): $(AB)/"
	@$(SAN_ENV) DLDL_BIN_DIR=$(AB) DLDL_TEST_DIR=$(AB)/tests sh tests/run.sh $(ASAN_SECTIONS); rc=$$?; \
	if [ -n "$$(ls -A $(SAN_LOG))" ]; then \
	    for f in $(SAN_LOG)/*; do echo "---- $$f"; head -60 "$$f"; done; \
	    echo "FAIL: sanitizer reports in $(SAN_LOG)/"; rc=1; \
	fi; exit $$rc

# The old name.
asan: test-asan

# On a machine with an NVIDIA GPU (docs/cuda.md): every spec's training steps
# and evaluation on the GPU against the CPU backend, then the age spec trained
# for one epoch on both.  bench-gpu: dldl against PyTorch eager and
# torch.compile on the GPU, bench/results/gpu.md.  Neither has run yet: no GPU
# was at hand when they were written.
test-gpu: all $(B)/tests/test_cuda_backend
	DLDL_TEST_DEVICE=cuda $(B)/tests/test_cuda_backend
	sh tests/gpu/test_gpu.sh

bench-gpu: all
	sh bench/gpu.sh

# Ten-fold cross-validation of every LDL spec on the real files: bench/results/ldl.md.
bench-ldl: all
	sh bench/ldl.sh

# Five-fold VOC multi-label: dldl, its PyTorch peer, the trivial predictor and
# the hard-target ablation: bench/results/voc_multilabel.md (about an hour).
bench-voc: all
	sh bench/voc_multilabel.sh

bench-voc-seg: all
	sh bench/voc_seg.sh

clean:
	rm -rf $(B) $(AB) dldlc dldlrun

# MPI data parallelism on this machine: 1 rank x 2 threads vs 2 ranks x 1 thread on
# the age spec, and the share of a step waiting in all-reduces: bench/results/mpi.md
# (about 2 minutes).
bench-mpi: all
	sh bench/mpi.sh

.PHONY: all deps test-bins test golden asan-build test-asan asan clean bench-ldl bench-voc bench-voc-seg test-gpu bench-gpu bench-mpi
-include $(shell find $(B) -name '*.d' 2>/dev/null)

# ---- fuzzing (clang) ------------------------------------------------------
# Every tests/fuzz/fuzz_NAME.c is a libFuzzer harness (adding one is adding the
# file), built with clang, ASan and UBSan into build/fuzz/fuzz_NAME (objects in
# build/fuzz/obj/, apart from the gcc build), linked with the compiler's objects
# and runtime/checkpoint.c.  tests/fuzz/run.sh replays each harness's
# tests/fuzz/regressions/NAME/ and then fuzzes it for FUZZ_SECONDS, one after
# the other; a crash fails and names the input.  Needs clang and
# libclang-rt-14-dev (make deps).  See tests/fuzz/README.md.
#   make fuzz      the corpora of build/fuzz/corpus/, which grow across runs
#   make fuzz-ci   (CI) fresh corpora seeded from the repository only
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FB = $(B)/fuzz
FUZZ_SAN    = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -O1 -g $(FUZZ_SAN) $(CPPFLAGS)
FUZZ_NAMES  = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS   = $(FUZZ_NAMES:%=$(FB)/fuzz_%)
FUZZ_SRC    = $(COMMON_SRC) $(GRAMMAR_SRC) $(COMPILER_SRC) $(CODEGEN_SRC) runtime/checkpoint.c
FUZZ_OBJ    = $(FUZZ_SRC:%.c=$(FB)/obj/%.o) $(FB)/obj/grammar/parser.o $(FB)/obj/grammar/lexer.o

$(FB)/obj/grammar/parser.o: $(B)/grammar/parser.c $(B)/grammar/lexer.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Igrammar -c -o $@ $<
$(FB)/obj/grammar/lexer.o: $(B)/grammar/lexer.c $(B)/grammar/parser.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Igrammar -c -o $@ $<
$(FB)/obj/%.o: %.c | $(B)/grammar/parser.h $(B)/grammar/lexer.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(WARN) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(FB)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_io.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(WARN) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) -ljansson $(DLDLC_LIBS)

# The age plan the checkpoint harness loads ($$DLDL_FUZZ_PLAN's default).
$(FB)/age.plan: $(DLDLC) specs/age.dldl
	@mkdir -p $(@D)
	$(DLDLC) specs/age.dldl -o $@

fuzz-build: $(FUZZ_BINS) $(FB)/age.plan

fuzz: fuzz-build
	@sh tests/fuzz/run.sh $(FB) $(FB)/corpus $(FUZZ_SECONDS)

fuzz-ci: fuzz-build
	@rm -rf $(FB)/ci-corpus
	@sh tests/fuzz/run.sh $(FB) $(FB)/ci-corpus $(FUZZ_SECONDS)

.SECONDARY: $(FUZZ_OBJ)
.PHONY: fuzz fuzz-build fuzz-ci
