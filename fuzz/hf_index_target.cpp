// Fuzz target: a model.safetensors.index.json beside a valid config.json and two small shards
// (a.safetensors holds "x", b.safetensors holds "y"), opened with io::HfCheckpoint::open and then
// every listed tensor looked up, as loading a sharded checkpoint does.
#include "fuzz_targets.h"
#include "fuzz_util.h"
#include "io/hf_checkpoint.h"
#include "io/safetensors.h"

namespace polymoe::fuzz {

int fuzz_hf_index(const uint8_t* data, size_t size) {
    static const std::string dir = [] {
        std::string d = scratch_dir() + "/hf_index";
        write_scratch("hf_index/config.json", "{}", 2);
        const float x[2] = {1.0f, 2.0f};
        const int32_t y[3] = {1, 2, 3};
        io::write_safetensors(d + "/a.safetensors", {{"x", DType::F32, {2}, x}});
        io::write_safetensors(d + "/b.safetensors", {{"y", DType::I32, {3}, y}});
        return d;
    }();
    return guarded([&] {
        write_scratch("hf_index/model.safetensors.index.json", data, size);
        io::HfCheckpoint ck = io::HfCheckpoint::open(dir);
        for (const std::string& name : ck.tensor_names()) {
            const io::SafetensorsFile* f = nullptr;
            const io::TensorInfo* t = ck.find(name, &f);
            if (t == nullptr || f == nullptr) throw std::logic_error("listed tensor not found");
            (void)f->data(*t);
        }
    });
}

}  // namespace polymoe::fuzz
