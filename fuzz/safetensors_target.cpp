// Fuzz target: a .safetensors file (u64 header length, JSON header, data section) opened with
// io::SafetensorsFile::open, then every tensor's bytes read through data() so that any offset the
// validator let through outside the mapping shows up under ASan.
#include "fuzz_targets.h"
#include "fuzz_util.h"
#include "io/safetensors.h"

namespace polymoe::fuzz {

int fuzz_safetensors(const uint8_t* data, size_t size) {
    return guarded([&] {
        std::string path = write_scratch("input.safetensors", data, size);
        io::SafetensorsFile f = io::SafetensorsFile::open(path);
        uint64_t sum = 0;
        for (const io::TensorInfo& t : f.tensors()) {
            const auto* p = static_cast<const uint8_t*>(f.data(t));
            for (int64_t i = 0; i < t.end - t.begin; ++i)
                sum += p[i];
            if (f.find(t.name) != &t) throw std::logic_error("find() disagrees with tensors()");
        }
        for (const auto& [k, v] : f.metadata())
            sum += k.size() + v.size();
        (void)sum;
    });
}

}  // namespace polymoe::fuzz
