// Fuzz target: a .npz archive (io::NpzReader over minizip and zlib): list the keys, decode each
// member's header and read each array, touching every element.
#include "fuzz_targets.h"
#include "fuzz_util.h"
#include "io/npz.h"

namespace polymoe::fuzz {

void touch_npy(const io::NpyArray& a);  // npy_target.cpp

int fuzz_npz(const uint8_t* data, size_t size) {
    return guarded([&] {
        std::string path = write_scratch("input.npz", data, size);
        io::NpzReader z = io::NpzReader::open(path);
        for (const std::string& key : z.keys()) {
            try {
                (void)z.header(key);
                touch_npy(z.read(key));
            } catch (const polymoe::Error&) {
            }
        }
    });
}

}  // namespace polymoe::fuzz
