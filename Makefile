# snapmla: spec -> CUDA source -> NVRTC -> disk cache -> launch.
#   make            library (static + shared), CLI, pkg-config file
#   make test       CPU tests (ASan/UBSan), NVRTC compile of every shipped
#                   variant, GPU tests (skipped with one line without a GPU)
#   make run        the main job: `snapmla run` on the bundled default spec
#   make install PREFIX=/usr/local

PREFIX ?= /usr/local
CUDA_HOME ?= /usr/local/cuda
BUILD ?= build
DEFAULT_SPEC ?= specs/deepseek_v3.yaml

CC ?= cc
# Headers and static libraries unpacked from .debs (for machines where
# nothing can be installed: scripts/deps.sh --unpack .deps).
DEPS_ROOT := $(wildcard .deps/usr)
DEPS_CFLAGS := $(if $(DEPS_ROOT),-I$(DEPS_ROOT)/include)
DEPS_LDFLAGS := $(if $(DEPS_ROOT),-L$(DEPS_ROOT)/lib/x86_64-linux-gnu)

# Messages and paths are cut to their buffers on purpose: no truncation warnings.
WARN := -Wall -Wextra -Werror -Wno-format-truncation
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC \
    -Iinclude -Igen -Iruntime -Ireference -I$(BUILD) -Itests -I$(CUDA_HOME)/include $(DEPS_CFLAGS)
# libyaml goes in statically: the library then runs where libyaml is absent.
YAML_LIBS ?= -l:libyaml.a
NVRTC_LIBS := -L$(CUDA_HOME)/lib64 -lnvrtc -Wl,-rpath,$(CUDA_HOME)/lib64
LIBS := $(DEPS_LDFLAGS) $(YAML_LIBS) $(NVRTC_LIBS) -ldl -lpthread -lm
CHECK_LIBS := $(DEPS_LDFLAGS) -l:libcheck.a -l:libsubunit.a -lrt -lm -pthread

TEMPLATES := templates/prelude.cuh templates/decode_common.cuh templates/decode_simt.cu templates/decode_mma.cu templates/wgmma.cuh templates/decode_plan.cu templates/wgmma_decode.cuh templates/wgmma_fp8_parts.cuh templates/decode_wgmma_fp8.cu templates/decode_wgmma_fp8_roles.cu templates/decode_wgmma_bf16.cu templates/decode_wgmma_bf16_pair.cu templates/decode_wgmma_kernel.cu templates/mma_peak.cu templates/combine.cu templates/append.cu
LIB_SRC := $(wildcard gen/*.c) $(wildcard runtime/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/templates.o
REF_SRC := $(wildcard reference/*.c)
REF_OBJ := $(REF_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC := $(wildcard cli/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)

.PHONY: all deps test run install python clean fuzz
all: $(BUILD)/libsnapmla.a $(BUILD)/libsnapmla.so $(BUILD)/snapmla $(BUILD)/snapmla.pc

deps:
	@scripts/deps.sh

$(BUILD)/embed: tools/embed.c
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -O2 $< -o $@

$(BUILD)/templates.c: $(BUILD)/embed $(TEMPLATES) Makefile
	$(BUILD)/embed $@ $(TEMPLATES)

$(BUILD)/obj/templates.o: $(BUILD)/templates.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Igen -c $< -o $@

$(BUILD)/obj/%.o: %.c $(wildcard include/*.h gen/*.h runtime/*.h reference/*.h cli/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libsnapmla.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libsnapmla.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libsnapmla.so.0 $^ -o $@ $(LIBS)

$(BUILD)/snapmla: $(CLI_OBJ) $(REF_OBJ) $(BUILD)/libsnapmla.a
	$(CC) $(CLI_OBJ) $(REF_OBJ) $(BUILD)/libsnapmla.a -o $@ $(LIBS)

$(BUILD)/snapmla.pc: snapmla.pc.in
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@CUDA_HOME@|$(CUDA_HOME)|g' $< > $@

# ---- tests ----------------------------------------------------------------
# CPU tests run under ASan + UBSan; NVRTC's own allocations are not ours.
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer
SAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/san/%.o) $(REF_SRC:%.c=$(BUILD)/san/%.o) $(BUILD)/san/templates.o
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TEST_DEFS := -DSNAPMLA_SOURCE_DIR=\"$(CURDIR)\"
CPU_TESTS := test_spec_load test_disk_cache test_quant test_reference test_emit test_runtime \
    test_tuning

$(BUILD)/san/%.o: %.c $(wildcard include/*.h gen/*.h runtime/*.h reference/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) $(TEST_DEFS) -c $< -o $@

$(BUILD)/san/templates.o: $(BUILD)/templates.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) -c $< -o $@

TEST_HEADERS := $(wildcard tests/*.h)

$(BUILD)/tests/%: tests/%.c $(SAN_OBJ) $(TEST_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) $(TEST_DEFS) $< $(SAN_OBJ) -o $@ $(LIBS) $(CHECK_LIBS)

# test_tuning also tests the CLI's tune plan and measurement log.
TUNE_SAN_OBJ := $(BUILD)/san/cli/tune_plan.o $(BUILD)/san/cli/tune_log.o

$(BUILD)/san/cli/%.o: cli/%.c $(wildcard include/*.h gen/*.h runtime/*.h reference/*.h cli/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) $(TEST_DEFS) -c $< -o $@

$(BUILD)/tests/test_tuning: tests/test_tuning.c $(SAN_OBJ) $(TUNE_SAN_OBJ) $(TEST_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) $(TEST_DEFS) -Icli $< $(SAN_OBJ) $(TUNE_SAN_OBJ) -o $@ $(LIBS) $(CHECK_LIBS)

# The GPU test goes without sanitizers: ASan's shadow memory and the CUDA
# driver's address reservations do not mix.
$(BUILD)/tests/test_gpu: tests/test_gpu.c $(LIB_OBJ) $(REF_OBJ) $(TEST_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(TEST_DEFS) $< $(LIB_OBJ) $(REF_OBJ) -o $@ $(LIBS) $(CHECK_LIBS)

# The GPU half of the tuning tests: dispatch and the tune correctness gate.
$(BUILD)/tests/test_tuning_gpu: tests/test_tuning_gpu.c $(LIB_OBJ) $(REF_OBJ) $(BUILD)/obj/cli/tune_check.o $(TEST_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(TEST_DEFS) -Icli $< $(LIB_OBJ) $(REF_OBJ) $(BUILD)/obj/cli/tune_check.o -o $@ $(LIBS) $(CHECK_LIBS)

test: deps
	$(MAKE) all $(CPU_TESTS:%=$(BUILD)/tests/%) $(BUILD)/tests/test_gpu $(BUILD)/tests/test_tuning_gpu
	@set -e; for t in $(CPU_TESTS); do echo "== $$t"; $(SAN_ENV) $(BUILD)/tests/$$t; done
	@echo "== test_cli"; tests/test_cli.sh $(BUILD)/snapmla
	@echo "== test_gpu"; $(BUILD)/tests/test_gpu
	@echo "== test_tuning_gpu"; $(BUILD)/tests/test_tuning_gpu
	@echo "== python"; if python3 -c "import torch, pytest; assert torch.cuda.is_available()" 2>/dev/null; \
	then PYTHONPATH=python python3 -m pytest -q python/tests; \
	else echo "SKIP python tests: needs torch with a CUDA GPU and pytest"; fi

# Coverage-guided fuzzing of the two YAML readers (clang's libFuzzer; not
# part of `make test`, whose mutation tests check the same rules on seeded
# inputs). FUZZ_SECONDS per reader; findings land in build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -g -O1
FUZZ_SRC := $(LIB_SRC) $(BUILD)/templates.c tests/fuzz_inputs.c

$(BUILD)/fuzz/spec: $(FUZZ_SRC) $(TEST_HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE $(FUZZ_FLAGS) $(filter-out -fPIC -Wno-format-truncation,$(ALL_CFLAGS)) $(FUZZ_SRC) -o $@ $(LIBS)

$(BUILD)/fuzz/tuning_db: $(FUZZ_SRC) $(TEST_HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -DFUZZ_TUNING_DB $(FUZZ_FLAGS) $(filter-out -fPIC -Wno-format-truncation,$(ALL_CFLAGS)) $(FUZZ_SRC) -o $@ $(LIBS)

fuzz: deps $(BUILD)/fuzz/spec $(BUILD)/fuzz/tuning_db
	@mkdir -p $(BUILD)/fuzz/spec.corpus $(BUILD)/fuzz/tuning_db.corpus
	cp specs/*.yaml bench/*.yaml tests/specs_bad/* $(BUILD)/fuzz/spec.corpus/
	cp docs/tuned_h100_fp8.yaml $(BUILD)/fuzz/tuning_db.corpus/
	$(SAN_ENV) $(BUILD)/fuzz/spec -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	    -artifact_prefix=$(BUILD)/fuzz/spec- $(BUILD)/fuzz/spec.corpus
	$(SAN_ENV) $(BUILD)/fuzz/tuning_db -max_total_time=$(FUZZ_SECONDS) -max_len=16384 \
	    -artifact_prefix=$(BUILD)/fuzz/tuning_db- $(BUILD)/fuzz/tuning_db.corpus

run: deps
	$(MAKE) all
	$(BUILD)/snapmla run $(DEFAULT_SPEC)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/snapmla $(DESTDIR)$(PREFIX)/bin/snapmla
	install -m 644 $(BUILD)/libsnapmla.a $(DESTDIR)$(PREFIX)/lib/libsnapmla.a
	install -m 755 $(BUILD)/libsnapmla.so $(DESTDIR)$(PREFIX)/lib/libsnapmla.so.0
	ln -sf libsnapmla.so.0 $(DESTDIR)$(PREFIX)/lib/libsnapmla.so
	install -m 644 include/snapmla.h $(DESTDIR)$(PREFIX)/include/snapmla.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@CUDA_HOME@|$(CUDA_HOME)|g' snapmla.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/snapmla.pc

# The Python package with the library inside: then `pip install ./python`.
python: $(BUILD)/libsnapmla.so
	cp $(BUILD)/libsnapmla.so python/snapmla/libsnapmla.so

clean:
	rm -rf $(BUILD) python/snapmla/libsnapmla.so
