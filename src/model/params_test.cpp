// Streaming init (write_initialized_checkpoint) against init_weights + save_checkpoint: the two
// must write byte-identical checkpoint directories (f32 and bf16, one and several shards); a
// different seed must not (the comparison can fail).
#include "model/params.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <utility>

namespace polymoe::model {
namespace {

namespace fs = std::filesystem;

std::map<std::string, std::string> read_dir(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::ifstream in(e.path(), std::ios::binary);
        files[e.path().filename().string()] =
            std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return files;
}

struct TempDir {
    fs::path path = fs::temp_directory_path() /
                    fmt::format("polymoe_stream_init_{}", static_cast<long>(::getpid()));
    TempDir() {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
};

OlmoeConfig small_config() {
    OlmoeConfig c = preset("micro");  // small and fast; has a pad token row to zero
    c.num_hidden_layers = 3;
    return c;
}

TEST(StreamingInit, WritesTheSameFilesAsInitAndSave) {
    const OlmoeConfig c = small_config();
    ASSERT_TRUE(c.pad_token_id.has_value());
    OlmoeWeights w(c);
    init_weights(w, 7);
    TempDir tmp;
    // f32 in one file, bf16 in three shards (the two writers share the shard split).
    for (const auto& [dt, shards] : {std::pair{DType::F32, 1}, std::pair{DType::BF16, 3}}) {
        const std::string tag = fmt::format("{}_{}", dtype_name(dt), shards);
        save_checkpoint(w, (tmp.path / ("slab_" + tag)).string(), dt, shards);
        write_initialized_checkpoint(c, 7, (tmp.path / ("stream_" + tag)).string(), dt, shards);
        const auto a = read_dir(tmp.path / ("slab_" + tag));
        const auto b = read_dir(tmp.path / ("stream_" + tag));
        EXPECT_EQ(a.size(), shards == 1 ? 3u : 6u) << tag;
        EXPECT_TRUE(a == b) << tag << ": streaming init differs from init + save";
    }
    // Negative control: another seed gives other weight files.
    write_initialized_checkpoint(c, 8, (tmp.path / "seed8").string(), DType::F32, 1);
    EXPECT_NE(read_dir(tmp.path / "seed8").at("model.safetensors"),
              read_dir(tmp.path / "slab_F32_1").at("model.safetensors"));
}

}  // namespace
}  // namespace polymoe::model
