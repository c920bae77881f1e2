// Fuzz target: a token shard (data::Shard::open on a memory mapping), then every document's
// tokens and passage id read, so any table entry that points outside the file shows under ASan.
#include "data/shard.h"
#include "fuzz_targets.h"
#include "fuzz_util.h"

namespace polymoe::fuzz {

int fuzz_shard(const uint8_t* data, size_t size) {
    return guarded([&] {
        std::string path = write_scratch("input.pmshard", data, size);
        data::Shard s = data::Shard::open(path);
        uint64_t sum = 0;
        for (int64_t i = 0; i < s.num_documents(); ++i) {
            for (uint32_t t : s.document(i))
                sum += t;
            sum += static_cast<uint64_t>(s.passage(i));
        }
        for (uint32_t t : s.tokens())
            sum += t;
        (void)sum;
    });
}

}  // namespace polymoe::fuzz
