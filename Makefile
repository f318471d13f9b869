# ntc — plain Makefile. Targets:
#   make            static library build/libntc.a and the CLI build/ntc
#   make test       build and run every GoogleTest suite (one binary, build/ntc_tests)
#   make bench      build the CLI (benchmarks are `ntc bench <name>`)
#   make run        compress + decompress data/samples/seeding.png with the shipped model
#   make asan       build + test with AddressSanitizer and UBSan (in build-asan/)
#   make scalar     build + test with the scalar reference kernels as default (in build-scalar/)
#   make deps       install missing Debian packages (as root) or say what to install
#   make clean
#
# -Wno-restrict: GCC 12 false positive in std::string (GCC PR105651).
# Release flags: -O3, no -ffast-math, FP contraction off (results do not depend on whether
# the compiler fuses a*b+c). The baseline ISA is x86-64 + AVX2/FMA/F16C, so a binary built
# here runs on any AVX2 machine; Highway's runtime dispatch picks AVX-512 where present.

MAKEFLAGS += --no-print-directory
CXX      ?= g++
BUILD    ?= build
OPT      ?= -O3
ARCH     ?= -mavx2 -mfma -mf16c -mbmi -mbmi2 -mlzcnt -mpopcnt
EXTRA    ?=
BLAS_INC := $(firstword $(wildcard /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas))
CPPFLAGS := -I. $(if $(BLAS_INC),-I$(BLAS_INC)) -I/usr/include/stb
CXXFLAGS := -std=c++20 $(OPT) $(ARCH) -g -fPIC -fopenmp -ffp-contract=off -Wall -Wextra -Wno-unused-parameter -Wno-restrict -MMD -MP $(EXTRA)
LDFLAGS  := -fopenmp $(EXTRA)
# OpenBLAS is not linked: lib/blas.cc opens it when first used (most processes never do).
LDLIBS   := -lhwy -lhwy_contrib -lstb -lz -lpthread -lm

# Open MPI (data-parallel `mpirun -np N ntc train`, train/dist.h): only cli/mpi_plugin.cc sees
# <mpi.h>; it is built into $(BUILD)/libntc_mpi.so, linked with libmpi, which the ntc binary opens
# only when mpirun starts it (cli/launch.cc), so no other process loads libmpi. Without mpicxx
# there is no plugin, and ntc refuses to run as one of several ranks.
MPICXX    := $(shell command -v mpicxx 2>/dev/null)
ifneq ($(MPICXX),)
MPI_CPPFLAGS := $(shell $(MPICXX) --showme:compile) -DNTC_HAVE_MPI=1 -DOMPI_SKIP_MPICXX=1
MPI_LDLIBS   := $(filter-out -lmpi_cxx,$(shell $(MPICXX) --showme:link))
MPI_PLUGIN   := $(BUILD)/libntc_mpi.so
endif

LIB_SRC   := $(wildcard lib/*.cc lib/ops/*.cc kernels/*.cc nn/*.cc codec/*.cc train/*.cc)
CLI_SRC   := $(filter-out cli/mpi_plugin.cc,$(wildcard cli/*.cc bench/*.cc))
TEST_SRC  := $(wildcard tests/*.cc) tests/fuzz/targets.cc

LIB_OBJ   := $(LIB_SRC:%.cc=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.cc=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.cc=$(BUILD)/%.o)

# The shared library: the same objects (built -fPIC), soname libntc.so.$(SOVERSION) = the C API
# version (nn/ntc.h), exporting the C API and the C++ internals.
VERSION     := $(shell sed -n 's/^\#define NTC_VERSION_STRING "\(.*\)"/\1/p' nn/ntc.h)
SOVERSION   := 0
SONAME      := libntc.so.$(SOVERSION)
SONAME_FULL := libntc.so.$(VERSION)

.PHONY: all test bench asan scalar deps clean run fuzz fuzz-build fuzz-bins install uninstall
all: $(BUILD)/ntc $(BUILD)/$(SONAME_FULL) $(MPI_PLUGIN)

$(BUILD)/$(SONAME_FULL): $(LIB_OBJ)
	$(CXX) $(LDFLAGS) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LDLIBS)
	ln -sf $(SONAME_FULL) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libntc.so

$(BUILD)/libntc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# cli/hwy_runtime.cc defines what ntc's Highway code needs of libhwy.so, so that the binary does
# not load it (its start-up costs 3.9 ms a process); --as-needed drops it from the binary's list.
$(BUILD)/ntc: $(CLI_OBJ) $(BUILD)/libntc.a
	$(CXX) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libntc.a -Wl,--as-needed $(LDLIBS)

$(BUILD)/libntc_mpi.so: $(BUILD)/cli/mpi_plugin.o
	$(CXX) $(LDFLAGS) -shared -o $@ $^ $(MPI_LDLIBS)

$(BUILD)/cli/mpi_plugin.o: CPPFLAGS += $(MPI_CPPFLAGS)

$(BUILD)/ntc_tests: $(TEST_OBJ) $(BUILD)/libntc.a
	$(CXX) $(LDFLAGS) -o $@ $(TEST_OBJ) $(BUILD)/libntc.a -lgtest $(LDLIBS)

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c -o $@ $<

# The whole suite; prints 'tests: N passed, N failed, N skipped' as its last line.
test: $(BUILD)/ntc_tests $(BUILD)/ntc $(BUILD)/$(SONAME_FULL) $(MPI_PLUGIN)
	NTC_BIN=$(BUILD)/ntc NTC_LIBRARY=$(BUILD)/libntc.so $(BUILD)/ntc_tests $(TEST_ARGS)

bench: $(BUILD)/ntc

# The main job: compress and decompress the sample image with the shipped model.
run: $(BUILD)/ntc
	$(BUILD)/ntc encode data/samples/seeding.png -o $(BUILD)/seeding.ntc --psnr
	$(BUILD)/ntc decode $(BUILD)/seeding.ntc -o $(BUILD)/seeding.decoded.png -v

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 EXTRA="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

scalar:
	$(MAKE) BUILD=build-scalar EXTRA="-DNTC_SCALAR_DEFAULT=1" test

# Fuzzing (tests/fuzz/README.md): libFuzzer targets built by clang under ASan + UBSan in
# build-fuzz/; `make fuzz` runs each for FUZZ_SECONDS from the seed corpus in tests/fuzz/corpus and
# fails on any crash, hang, leak or out-of-memory.
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_TARGETS := $(patsubst tests/fuzz/%.cc,%,$(wildcard tests/fuzz/fuzz_*.cc))

fuzz: fuzz-build
	bash tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CXX=clang++ OPT=-O1 EXTRA="$(FUZZ_SAN) -fsanitize=fuzzer-no-link -Wno-unknown-warning-option" fuzz-bins

fuzz-bins: $(patsubst %,$(BUILD)/%,$(FUZZ_TARGETS))
.PRECIOUS: $(BUILD)/tests/fuzz/%.o

$(BUILD)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/targets.o $(BUILD)/libntc.a
	$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# make install PREFIX=/usr/local DESTDIR=: bin/ntc, lib/libntc.so.N (+ links) and libntc.a,
# include/ntc/ntc.h, lib/pkgconfig/ntc.pc, share/ntc/{models,configs}, share/man/man1/ntc.1.
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL_ROOT := $(DESTDIR)$(PREFIX)

install: all
	install -d $(INSTALL_ROOT)/bin $(INSTALL_ROOT)/lib/pkgconfig $(INSTALL_ROOT)/include/ntc \
	  $(INSTALL_ROOT)/share/ntc/models $(INSTALL_ROOT)/share/ntc/configs $(INSTALL_ROOT)/share/man/man1
	install -m 755 $(BUILD)/ntc $(INSTALL_ROOT)/bin/ntc
	$(if $(MPI_PLUGIN),install -d $(INSTALL_ROOT)/lib/ntc && install -m 755 $(MPI_PLUGIN) $(INSTALL_ROOT)/lib/ntc/libntc_mpi.so)
	install -m 755 $(BUILD)/$(SONAME_FULL) $(INSTALL_ROOT)/lib/$(SONAME_FULL)
	ln -sf $(SONAME_FULL) $(INSTALL_ROOT)/lib/$(SONAME)
	ln -sf $(SONAME) $(INSTALL_ROOT)/lib/libntc.so
	install -m 644 $(BUILD)/libntc.a $(INSTALL_ROOT)/lib/libntc.a
	install -m 644 nn/ntc.h $(INSTALL_ROOT)/include/ntc/ntc.h
	install -m 644 data/models/*.ntcm $(INSTALL_ROOT)/share/ntc/models/
	install -m 644 data/configs/*.cfg $(INSTALL_ROOT)/share/ntc/configs/
	install -m 644 data/ntc.1 $(INSTALL_ROOT)/share/man/man1/ntc.1
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' data/ntc.pc.in > $(INSTALL_ROOT)/lib/pkgconfig/ntc.pc

uninstall:
	rm -f $(INSTALL_ROOT)/bin/ntc $(INSTALL_ROOT)/lib/$(SONAME_FULL) $(INSTALL_ROOT)/lib/$(SONAME) \
	  $(INSTALL_ROOT)/lib/libntc.so $(INSTALL_ROOT)/lib/libntc.a $(INSTALL_ROOT)/include/ntc/ntc.h \
	  $(INSTALL_ROOT)/lib/pkgconfig/ntc.pc $(INSTALL_ROOT)/share/man/man1/ntc.1
	rm -rf $(INSTALL_ROOT)/share/ntc $(INSTALL_ROOT)/lib/ntc
	-rmdir $(INSTALL_ROOT)/include/ntc 2>/dev/null

deps:
	@bash scripts/deps.sh

clean:
	rm -rf build build-asan build-scalar build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(wildcard $(BUILD)/cli/mpi_plugin.d) $(wildcard $(BUILD)/tests/fuzz/*.d)
