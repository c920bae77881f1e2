// Fuzz target: a .npy file (io::read_npy; header, dtype, shape, data), then every element read
// through the typed accessors, and the header parser alone on the same bytes.
#include "fuzz_targets.h"
#include "fuzz_util.h"
#include "io/npy.h"

namespace polymoe::fuzz {

void touch_npy(const io::NpyArray& a) {
    const int64_t n = a.numel();
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (a.is_integer())
            sum += static_cast<double>(a.get_int(i));
        else if (a.is_float())
            sum += a.get_double(i);
        else if (a.is_unicode())
            sum += static_cast<double>(a.get_string(i).size());
    }
    (void)sum;
}

int fuzz_npy(const uint8_t* data, size_t size) {
    return guarded([&] {
        std::string path = write_scratch("input.npy", data, size);
        try {
            (void)io::parse_npy_header(std::string_view(reinterpret_cast<const char*>(data), size),
                                       "fuzz.npy");
        } catch (const polymoe::Error&) {
        }
        touch_npy(io::read_npy(path));
    });
}

}  // namespace polymoe::fuzz
