# kforge build: out-of-tree into $(BUILD) (default build/). `make` builds build/kforge and
# build/libkforge.a; `make test` builds and runs every test (tests/run_tests.sh).
BUILD   ?= build
CC      ?= cc
OPT     ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter $(OPT) -Isrc -MMD -MP
BLAS_INC := $(firstword $(wildcard /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/aarch64-linux-gnu/openblas-pthread /usr/include/openblas))
ifneq ($(BLAS_INC),)
CFLAGS  += -I$(BLAS_INC)
endif
LDLIBS  += -lcjson -lsqlite3 -lcurl -lopenblas -ldl -lm -lpthread

LIB_SRC  := $(shell find src -name '*.c' -not -path 'src/cli/*' | sort)
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(wildcard tests/test_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TOOL_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/tool_*.c))

all: $(BUILD)/kforge $(BUILD)/libkforge.a

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libkforge.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/kforge: $(CLI_OBJ) $(BUILD)/libkforge.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libkforge.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/kf_test.h $(BUILD)/libkforge.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libkforge.a $(LDLIBS)

tests: $(TEST_BIN) $(TOOL_BIN)

test: all tests
	BUILD=$(BUILD) bash tests/run_tests.sh

clean:
	rm -rf $(BUILD)

.PHONY: all tests test clean
-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
