# dldl - one plain Makefile.  make | make test | make golden | make asan | make clean
#
# Layout (processing order): grammar/ -> compiler/ -> codegen/ -> runtime/,
# common/ is shared by all.  Generated parser/lexer go to build/, never to git.

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
# Warnings: all and extra; unused parameters are common in op tables and
# callbacks, so that one is off.
WARN    = -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CPPFLAGS += -D_GNU_SOURCE -Ibuild -I.
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(CPPFLAGS) -MMD -MP

B = build
COMMON_SRC   = $(wildcard common/*.c)
GRAMMAR_SRC  = $(wildcard grammar/*.c)
COMPILER_SRC = $(filter-out compiler/main.c,$(wildcard compiler/*.c))
CODEGEN_SRC  = $(wildcard codegen/*.c)
RUNTIME_SRC  = $(filter-out runtime/main.c,$(wildcard runtime/*.c))

GEN_OBJ      = $(B)/grammar/parser.o $(B)/grammar/lexer.o
COMMON_OBJ   = $(COMMON_SRC:%.c=$(B)/%.o)
FRONT_OBJ    = $(GEN_OBJ) $(GRAMMAR_SRC:%.c=$(B)/%.o)
COMPILER_OBJ = $(COMPILER_SRC:%.c=$(B)/%.o)
CODEGEN_OBJ  = $(CODEGEN_SRC:%.c=$(B)/%.o)
RUNTIME_OBJ  = $(RUNTIME_SRC:%.c=$(B)/%.o)

DLDLC_LIBS   = -lxxhash -ldl -lm
DLDLRUN_LIBS = -ldnnl -lopenblas -lturbojpeg -ljansson -lxxhash -ldl -lm -lpthread -fopenmp

all: dldlc dldlrun

dldlc: $(B)/compiler/main.o $(COMPILER_OBJ) $(CODEGEN_OBJ) $(FRONT_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(DLDLC_LIBS) $(LDFLAGS)

dldlrun: $(B)/runtime/main.o $(RUNTIME_OBJ) $(COMMON_OBJ)
	$(CC) $(CFLAGS) -fopenmp -o $@ $^ $(DLDLRUN_LIBS) $(LDFLAGS)

$(B)/grammar/parser.c $(B)/grammar/parser.h: grammar/parser.y
	@mkdir -p $(B)/grammar
	bison -Wall -Werror --defines=$(B)/grammar/parser.h -o $(B)/grammar/parser.c $<

$(B)/grammar/lexer.c $(B)/grammar/lexer.h: grammar/lexer.l
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

# ---- tests ---------------------------------------------------------------
# Unit-test binaries: tests/unit/test_<name>.c, each linked with what it needs.
TEST_BINS = $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
$(B)/tests/%: tests/unit/%.c $(COMPILER_OBJ) $(CODEGEN_OBJ) $(FRONT_OBJ) $(COMMON_OBJ) $(RUNTIME_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fopenmp -o $@ $< $(filter %.o,$^) -lcmocka $(DLDLRUN_LIBS)

test: all $(TEST_BINS)
	@sh tests/run.sh

# Rewrite every golden file from the current build; review with git diff.
golden: all
	@UPDATE=1 sh tests/run.sh golden

# The suite under AddressSanitizer and UBSan, without the end-to-end trainings
# (too slow instrumented); rebuilds everything.
asan:
	$(MAKE) clean
	$(MAKE) CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	        LDFLAGS="-fsanitize=address,undefined" all $(TEST_BINS)
	sh tests/run.sh golden unit

clean:
	rm -rf $(B) dldlc dldlrun

.PHONY: all test golden asan clean
-include $(shell find $(B) -name '*.d' 2>/dev/null)
