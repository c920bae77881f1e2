// Fuzz target: a YAML stage config (data::load_stage_config), the file `polymoe <stage> --config`
// reads into option values.
#include "data/stage_config.h"
#include "fuzz_targets.h"
#include "fuzz_util.h"

namespace polymoe::fuzz {

int fuzz_stage_config(const uint8_t* data, size_t size) {
    return guarded([&] {
        std::string path = write_scratch("stage.yaml", data, size);
        size_t n = 0;
        for (const data::ConfigEntry& e : data::load_stage_config(path))
            n += e.key.size() + e.values.size();
        (void)n;
    });
}

}  // namespace polymoe::fuzz
