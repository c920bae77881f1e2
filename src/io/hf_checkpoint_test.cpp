// Tests of Hugging Face checkpoint directories: single-file and sharded round trips, the index
// content (total_size, sorted weight_map, HF shard names), the byte-balanced shard split, the
// index/shard cross-checks on read, and the all-or-nothing directory write (temporary sibling,
// overwrite only when asked, nothing left behind).
#include "io/hf_checkpoint.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/io_test_util.h"

namespace polymoe::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing_util::read_bytes;
using testing_util::TempDir;
using testing_util::throws_error_with;
using testing_util::write_bytes;

// Tensors with owned data, in write order.
struct TensorSet {
    std::vector<std::vector<uint8_t>> data;
    std::vector<TensorToWrite> tensors;

    void add(const std::string& name, DType dtype, std::vector<int64_t> shape) {
        int64_t n = dtype_size(dtype);
        for (int64_t d : shape)
            n *= d;
        std::vector<uint8_t> bytes(static_cast<size_t>(n));
        for (size_t i = 0; i < bytes.size(); ++i)
            bytes[i] = static_cast<uint8_t>(i * 13 + tensors.size() * 7 + 1);
        data.push_back(std::move(bytes));
        tensors.push_back({name, dtype, std::move(shape), data.back().data()});
        // data's buffers may move on reallocation; refresh all pointers.
        for (size_t i = 0; i < tensors.size(); ++i)
            tensors[i].data = data[i].data();
    }
    int64_t total_bytes() const {
        int64_t t = 0;
        for (const auto& d : data)
            t += static_cast<int64_t>(d.size());
        return t;
    }
};

// A micro OLMoE-like parameter list (names as in HF), F32 and BF16 mixed.
TensorSet micro_model() {
    TensorSet s;
    s.add("model.embed_tokens.weight", DType::F32, {16, 8});
    for (int l = 0; l < 2; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        s.add(p + "input_layernorm.weight", DType::F32, {8});
        s.add(p + "self_attn.q_proj.weight", DType::BF16, {8, 8});
        s.add(p + "mlp.gate.weight", DType::F32, {4, 8});
        for (int e = 0; e < 2; ++e)
            s.add(p + "mlp.experts." + std::to_string(e) + ".down_proj.weight", DType::BF16,
                  {8, 4});
    }
    s.add("model.norm.weight", DType::F32, {8});
    s.add("lm_head.weight", DType::F32, {16, 8});
    return s;
}

json micro_config() {
    return {{"architectures", {"OlmoeForCausalLM"}},
            {"model_type", "olmoe"},
            {"hidden_size", 8},
            {"num_experts", 2},
            {"rms_norm_eps", 1e-5},
            {"clip_qkv", nullptr}};
}

json micro_generation_config() {
    return {{"_from_model_config", true}, {"eos_token_id", 15}, {"pad_token_id", 1}};
}

// Every tensor of `s` is in `ck` with the same dtype, shape and bytes.
void expect_same_tensors(const HfCheckpoint& ck, const TensorSet& s) {
    EXPECT_EQ(ck.tensor_names().size(), s.tensors.size());
    for (size_t i = 0; i < s.tensors.size(); ++i) {
        const SafetensorsFile* file = nullptr;
        const TensorInfo* t = ck.find(s.tensors[i].name, &file);
        ASSERT_NE(t, nullptr) << s.tensors[i].name;
        ASSERT_NE(file, nullptr);
        EXPECT_EQ(t->dtype, s.tensors[i].dtype);
        EXPECT_EQ(t->shape, s.tensors[i].shape);
        ASSERT_EQ(t->end - t->begin, static_cast<int64_t>(s.data[i].size()));
        if (!s.data[i].empty()) {
            EXPECT_EQ(std::memcmp(file->data(*t), s.data[i].data(), s.data[i].size()), 0)
                << s.tensors[i].name;
        }
    }
}

// Names in `dir` other than `keep` (leftover temporary or old directories).
std::vector<std::string> siblings_except(const std::string& dir, const std::string& keep) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.path().filename() != keep) out.push_back(e.path().filename().string());
    }
    return out;
}

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
        out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

TEST(HfCheckpoint, SingleFileRoundTrip) {
    TempDir tmp;
    const TensorSet s = micro_model();
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), micro_generation_config(), s.tensors, 1);

    EXPECT_EQ(files_in(dir), (std::vector<std::string>{"config.json", "generation_config.json",
                                                       "model.safetensors"}));
    EXPECT_TRUE(siblings_except(tmp.path(), "ckpt").empty());
    HfCheckpoint ck = HfCheckpoint::open(dir);
    EXPECT_EQ(ck.dir(), dir);
    EXPECT_EQ(ck.config(), micro_config());
    EXPECT_EQ(ck.generation_config(), micro_generation_config());
    expect_same_tensors(ck, s);
    std::vector<std::string> names = ck.tensor_names();
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    EXPECT_EQ(ck.find("model.layers.9.mlp.gate.weight"), nullptr);

    SafetensorsFile f = SafetensorsFile::open(dir + "/model.safetensors");
    EXPECT_EQ(f.metadata().at("format"), "pt");
    // Written in the given order.
    for (size_t i = 0; i < s.tensors.size(); ++i)
        EXPECT_EQ(f.tensors()[i].name, s.tensors[i].name);
}

TEST(HfCheckpoint, ConfigIsPrettyPrintedWithSortedKeys) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), micro_generation_config(), micro_model().tensors, 1);
    const std::string text = read_bytes(dir + "/config.json");
    EXPECT_EQ(text.rfind("{\n  \"architectures\": [\n    \"OlmoeForCausalLM\"\n  ],\n", 0), 0u)
        << text;
    EXPECT_EQ(text.back(), '\n');
    EXPECT_LT(text.find("\"clip_qkv\": null"), text.find("\"hidden_size\": 8"));
}

TEST(HfCheckpoint, ShardedRoundTripWithIndex) {
    TempDir tmp;
    const TensorSet s = micro_model();
    const std::string dir = tmp.path("sharded");
    write_hf_checkpoint(dir, micro_config(), micro_generation_config(), s.tensors, 3);

    const std::vector<std::string> shard_names = {"model-00001-of-00003.safetensors",
                                                  "model-00002-of-00003.safetensors",
                                                  "model-00003-of-00003.safetensors"};
    std::vector<std::string> expected_files = {"config.json", "generation_config.json"};
    expected_files.insert(expected_files.end(), shard_names.begin(), shard_names.end());
    expected_files.push_back("model.safetensors.index.json");
    std::sort(expected_files.begin(), expected_files.end());
    EXPECT_EQ(files_in(dir), expected_files);
    EXPECT_TRUE(siblings_except(tmp.path(), "sharded").empty());

    const std::string index_text = read_bytes(dir + "/model.safetensors.index.json");
    const json index = json::parse(index_text);
    EXPECT_EQ(index["metadata"]["total_size"], s.total_bytes());
    ASSERT_TRUE(index["weight_map"].is_object());
    EXPECT_EQ(index["weight_map"].size(), s.tensors.size());
    // Keys appear sorted in the file text, as transformers writes them (sort_keys=True).
    EXPECT_LT(index_text.find("\"metadata\""), index_text.find("\"weight_map\""));
    EXPECT_LT(index_text.find("\"lm_head.weight\""), index_text.find("\"model.embed_tokens"));

    // Contiguous split in write order, every shard non-empty, agreeing with the shard files.
    int prev_shard = 0;
    for (const TensorToWrite& t : s.tensors) {
        const std::string file = index["weight_map"][t.name];
        int shard = static_cast<int>(std::find(shard_names.begin(), shard_names.end(), file) -
                                     shard_names.begin());
        ASSERT_LT(shard, 3) << file;
        EXPECT_TRUE(shard == prev_shard || shard == prev_shard + 1) << t.name;
        prev_shard = shard;
        EXPECT_NE(SafetensorsFile::open(dir + "/" + file).find(t.name), nullptr) << t.name;
    }
    EXPECT_EQ(prev_shard, 2);

    HfCheckpoint ck = HfCheckpoint::open(dir);
    expect_same_tensors(ck, s);
    const SafetensorsFile* file = nullptr;
    ck.find("lm_head.weight", &file);
    ASSERT_NE(file, nullptr);
    EXPECT_EQ(file->path(), dir + "/" + shard_names[2]);
}

// Shard of each tensor, from the index of a checkpoint written with `byte_sizes` (U8 tensors).
std::vector<int> shard_assignment(const std::vector<int64_t>& byte_sizes, int num_shards) {
    TempDir tmp;
    TensorSet s;
    for (size_t i = 0; i < byte_sizes.size(); ++i)
        s.add("t" + std::to_string(i), DType::U8, {byte_sizes[i]});
    const std::string dir = tmp.path("split");
    write_hf_checkpoint(dir, json::object(), nullptr, s.tensors, num_shards);
    std::vector<int> out;
    if (num_shards == 1) return std::vector<int>(byte_sizes.size(), 0);
    const json index = json::parse(read_bytes(dir + "/model.safetensors.index.json"));
    for (size_t i = 0; i < byte_sizes.size(); ++i) {
        const std::string file = index["weight_map"]["t" + std::to_string(i)];
        out.push_back(std::stoi(file.substr(6, 5)) - 1);  // model-0000i-of-...
    }
    return out;
}

TEST(HfCheckpoint, SplitsShardsBalancedByBytes) {
    EXPECT_EQ(shard_assignment({10, 10, 10, 10, 10, 10}, 3), (std::vector<int>{0, 0, 1, 1, 2, 2}));
    EXPECT_EQ(shard_assignment({100, 1, 1, 1, 1, 100, 1, 1, 1, 100}, 3),
              (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 2, 2, 2}));
    // A big last tensor still gets a shard of its own.
    EXPECT_EQ(shard_assignment({1, 1, 1, 1, 100}, 2), (std::vector<int>{0, 0, 0, 0, 1}));
    // A big first tensor: the rest spread so that no shard is empty.
    EXPECT_EQ(shard_assignment({100, 1, 1}, 3), (std::vector<int>{0, 1, 2}));
    // As many shards as tensors, zero-size tensors included.
    EXPECT_EQ(shard_assignment({0, 0, 5, 0}, 4), (std::vector<int>{0, 1, 2, 3}));
}

TEST(HfCheckpoint, RejectsBadShardCount) {
    TempDir tmp;
    const TensorSet s = micro_model();
    const std::string dir = tmp.path("bad");
    EXPECT_TRUE(
        throws_error_with([&] { write_hf_checkpoint(dir, micro_config(), nullptr, s.tensors, 0); },
                          {dir, "number of shards", "found 0"}));
    EXPECT_TRUE(throws_error_with(
        [&] {
            write_hf_checkpoint(dir, micro_config(), nullptr, s.tensors,
                                static_cast<int>(s.tensors.size()) + 1);
        },
        {dir, "number of shards"}));
    EXPECT_FALSE(fs::exists(dir));
}

TEST(HfCheckpoint, RejectsMissingShardFile) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 3);
    fs::remove(dir + "/model-00002-of-00003.safetensors");
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(dir); },
                                  {"[hf_checkpoint]", "model-00002-of-00003.safetensors",
                                   "no such file", "model.safetensors.index.json"}));
}

// Rewrites the index of `dir` after `edit` changed its weight_map.
template <typename F>
void edit_index(const std::string& dir, F&& edit) {
    const std::string path = dir + "/model.safetensors.index.json";
    json index = json::parse(read_bytes(path));
    edit(index["weight_map"]);
    write_bytes(path, index.dump(2));
}

TEST(HfCheckpoint, RejectsTensorListedInIndexButAbsent) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 3);
    edit_index(dir, [](json& wm) {
        wm["model.layers.7.mlp.gate.weight"] = "model-00001-of-00003.safetensors";
    });
    EXPECT_TRUE(throws_error_with(
        [&] { HfCheckpoint::open(dir); },
        {"model.layers.7.mlp.gate.weight", "model-00001-of-00003.safetensors", "absent"}));
}

TEST(HfCheckpoint, RejectsTensorMissingFromIndex) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 3);
    edit_index(dir, [](json& wm) { wm.erase("model.norm.weight"); });
    EXPECT_TRUE(
        throws_error_with([&] { HfCheckpoint::open(dir); },
                          {"model.norm.weight", "expected listed in",
                           "model.safetensors.index.json", "model-00003-of-00003.safetensors"}));
}

TEST(HfCheckpoint, RejectsTensorInTwoShards) {
    TempDir tmp;
    const TensorSet s = micro_model();
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, s.tensors, 3);
    // Rewrite shard 3 with an extra copy of the first tensor, which the index puts in shard 1.
    const std::string shard3 = dir + "/model-00003-of-00003.safetensors";
    std::vector<TensorToWrite> part;
    {
        SafetensorsFile f = SafetensorsFile::open(shard3);
        for (const TensorInfo& t : f.tensors()) {
            size_t i = 0;
            while (s.tensors[i].name != t.name)
                ++i;
            part.push_back(s.tensors[i]);
        }
    }
    part.push_back(s.tensors[0]);
    write_safetensors(shard3, part);
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(dir); },
                                  {"model.embed_tokens.weight", "model-00001-of-00003.safetensors",
                                   "also in", "model-00003-of-00003.safetensors"}));
}

TEST(HfCheckpoint, RejectsMalformedIndex) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 2);
    const std::string index = dir + "/model.safetensors.index.json";
    write_bytes(index, R"({"metadata": {}})");
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(dir); }, {index, "weight_map"}));
    write_bytes(index, R"({"weight_map": {"a": "../x.safetensors"}})");
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(dir); },
                                  {index, "weight_map['a']", "../x.safetensors"}));
    write_bytes(index, R"({"weight_map": )");
    EXPECT_TRUE(
        throws_error_with([&] { HfCheckpoint::open(dir); }, {index, "expected valid JSON"}));
}

TEST(HfCheckpoint, RejectsMissingOrInvalidConfig) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 1);
    write_bytes(dir + "/config.json", "{\"hidden_size\": 8,");
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(dir); },
                                  {dir + "/config.json", "expected valid JSON"}));
    write_bytes(dir + "/config.json", "[8]");
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(dir); },
                                  {dir + "/config.json", "expected a JSON object"}));
    fs::remove(dir + "/config.json");
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(dir); },
                                  {dir + "/config.json", "No such file or directory"}));
}

TEST(HfCheckpoint, RejectsMissingWeightsAndDirectory) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 1);
    fs::remove(dir + "/model.safetensors");
    EXPECT_TRUE(throws_error_with(
        [&] { HfCheckpoint::open(dir); },
        {dir, "model.safetensors or model.safetensors.index.json", "found neither"}));
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(tmp.path("absent")); },
                                  {tmp.path("absent"), "no such directory"}));
}

TEST(HfCheckpoint, RejectsCorruptShardNamingIt) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 2);
    const std::string shard = dir + "/model-00002-of-00002.safetensors";
    std::string raw = read_bytes(shard);
    write_bytes(shard, raw.substr(0, raw.size() - 1));
    EXPECT_TRUE(throws_error_with([&] { HfCheckpoint::open(dir); }, {"[safetensors]", shard}));
}

TEST(HfCheckpoint, GenerationConfigIsOptional) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 1);
    EXPECT_FALSE(fs::exists(dir + "/generation_config.json"));
    HfCheckpoint ck = HfCheckpoint::open(dir);
    EXPECT_TRUE(ck.generation_config().is_null());
    EXPECT_EQ(ck.config(), micro_config());
}

TEST(HfCheckpoint, RejectsExistingDirWithoutOverwrite) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    fs::create_directories(dir);
    write_bytes(dir + "/keep.txt", "mine");
    EXPECT_TRUE(throws_error_with(
        [&] { write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 1); },
        {dir, "existing"}));
    EXPECT_EQ(read_bytes(dir + "/keep.txt"), "mine");
    EXPECT_EQ(files_in(dir), std::vector<std::string>{"keep.txt"});
    EXPECT_TRUE(siblings_except(tmp.path(), "ckpt").empty());
}

TEST(HfCheckpoint, OverwriteReplacesExistingDir) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 3);
    write_bytes(dir + "/stale.txt", "old");
    TensorSet s;
    s.add("only.weight", DType::F32, {3});
    write_hf_checkpoint(dir + "/", json{{"model_type", "olmoe"}}, nullptr, s.tensors, 1, true);
    EXPECT_EQ(files_in(dir), (std::vector<std::string>{"config.json", "model.safetensors"}));
    EXPECT_TRUE(siblings_except(tmp.path(), "ckpt").empty());
    HfCheckpoint ck = HfCheckpoint::open(dir);
    EXPECT_EQ(ck.tensor_names(), std::vector<std::string>{"only.weight"});
    expect_same_tensors(ck, s);
}

TEST(HfCheckpoint, FailedWriteLeavesNothingBehind) {
    TempDir tmp;
    const std::string dir = tmp.path("ckpt");
    TensorSet s = micro_model();
    // Not valid UTF-8: passes the up-front checks, fails while writing the last shard's header,
    // after config.json and the first shard were written into the temporary directory.
    s.tensors.back().name = "lm_head.\xff";
    EXPECT_TRUE(
        throws_error_with([&] { write_hf_checkpoint(dir, micro_config(), nullptr, s.tensors, 2); },
                          {"model-00002-of-00002.safetensors", "UTF-8"}));
    EXPECT_TRUE(fs::is_empty(tmp.path()));
    s = micro_model();
    s.tensors.back().data = nullptr;
    EXPECT_TRUE(
        throws_error_with([&] { write_hf_checkpoint(dir, micro_config(), nullptr, s.tensors, 2); },
                          {dir, "lm_head.weight", "null"}));
    EXPECT_TRUE(fs::is_empty(tmp.path()));
    s = micro_model();
    s.tensors.push_back(s.tensors[0]);
    EXPECT_TRUE(
        throws_error_with([&] { write_hf_checkpoint(dir, micro_config(), nullptr, s.tensors, 2); },
                          {dir, "model.embed_tokens.weight", "unique"}));
    EXPECT_TRUE(fs::is_empty(tmp.path()));
}

TEST(HfCheckpoint, CreatesParentDirectories) {
    TempDir tmp;
    const std::string dir = tmp.path("run/step-10");
    write_hf_checkpoint(dir, micro_config(), nullptr, micro_model().tensors, 1);
    expect_same_tensors(HfCheckpoint::open(dir), micro_model());
    EXPECT_EQ(files_in(tmp.path("run")), std::vector<std::string>{"step-10"});
}

}  // namespace
}  // namespace polymoe::io
