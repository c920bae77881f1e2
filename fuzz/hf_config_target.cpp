// Fuzz target: an HF config.json, loaded the way `polymoe` loads a checkpoint (io::HfCheckpoint
// reads the file, model::OlmoeConfig::from_json converts and validates it), then the derived
// widths computed so that a validated config with overflowing products is caught by UBSan.
#include "fuzz_targets.h"
#include "fuzz_util.h"
#include "io/hf_checkpoint.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace polymoe::fuzz {

int fuzz_hf_config(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        std::string d = scratch_dir() + "/hf_config";
        write_scratch("hf_config/config.json", "{}", 2);
        const float x[2] = {1.0f, 2.0f};
        io::write_safetensors(d + "/model.safetensors", {{"x", DType::F32, {2}, x}});
        return d;
    }();
    return guarded([&] {
        write_scratch("hf_config/config.json", data, size);
        io::HfCheckpoint ck = io::HfCheckpoint::open(dir);
        model::OlmoeConfig c = model::OlmoeConfig::from_json(ck.config(), dir + "/config.json");
        int64_t sum = c.head_dim() + c.q_width() + c.kv_width();
        (void)sum;
        (void)c.to_json().dump();
    });
}

}  // namespace polymoe::fuzz
