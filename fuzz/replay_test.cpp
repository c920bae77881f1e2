// Replays every committed fuzz input (fuzz/corpus/<target>/ seeds and fuzz/regressions/<target>/
// inputs that once crashed a reader) through the same target functions the libFuzzer binaries
// run, built with the normal compiler; in the ci-dev preset this runs them under ASan+UBSan. A
// target passes when every input ends normally or with polymoe::Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.h"

namespace {

namespace fs = std::filesystem;
using polymoe::fuzz::Target;

std::vector<std::string> inputs(const std::string& kind, std::string_view target) {
    std::vector<std::string> out;
    fs::path dir = fs::path(POLYMOE_SOURCE_DIR) / "fuzz" / kind / std::string(target);
    if (!fs::is_directory(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FuzzReplay : public testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, SeedsAndRegressions) {
    const Target& t = GetParam();
    std::vector<std::string> seeds = inputs("corpus", t.name);
    EXPECT_FALSE(seeds.empty()) << "no seed inputs under fuzz/corpus/" << t.name;
    std::vector<std::string> all = seeds;
    for (std::string& r : inputs("regressions", t.name))
        all.push_back(std::move(r));
    for (const std::string& path : all) {
        SCOPED_TRACE(path);
        std::vector<uint8_t> bytes = read_bytes(path);
        EXPECT_NO_THROW(t.fn(bytes.data(), bytes.size()));
    }
    // The empty input, which libFuzzer always tries first.
    EXPECT_NO_THROW(t.fn(nullptr, 0));
}

INSTANTIATE_TEST_SUITE_P(Targets,
                         FuzzReplay,
                         testing::ValuesIn(polymoe::fuzz::all_targets().begin(),
                                           polymoe::fuzz::all_targets().end()),
                         [](const testing::TestParamInfo<Target>& p) {
                             return std::string(p.param.name);
                         });

}  // namespace
