// libFuzzer entry point, compiled once per target (fuzz/CMakeLists.txt defines
// POLYMOE_FUZZ_TARGET as that target's function, e.g. polymoe::fuzz::fuzz_npy), so each fuzz_<name>
// binary runs exactly the function the replay test runs.
#include "fuzz_targets.h"

#ifndef POLYMOE_FUZZ_TARGET
#error "define POLYMOE_FUZZ_TARGET to a polymoe::fuzz::fuzz_<name> function"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return POLYMOE_FUZZ_TARGET(data, size);
}
