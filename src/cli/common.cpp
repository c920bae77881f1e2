// Shared CLI helpers (see common.h).
#include "cli/common.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <oneapi/dnnl/dnnl.hpp>
#include <span>
#include <sstream>

#include "core/error.h"
#include "core/parallel.h"
#include "core/version.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "io/file_util.h"
#include "io/npy.h"
#include "tokenizer/tokenizer.h"

namespace polymoe::cli {

TokenMatrix read_token_matrix(const std::string& path,
                              const std::string& what,
                              int64_t lo,
                              int64_t hi) {
    TokenMatrix m;
    std::vector<int64_t> values;
    if (path.size() >= 4 && path.substr(path.size() - 4) == ".npy") {
        io::NpyArray a = io::read_npy(path);
        if (!a.is_integer())
            fail("cli", "{} {}: expected an integer array, found dtype {}", what, path, a.descr);
        if (a.shape.size() == 1) {
            m.B = 1;
            m.S = a.shape[0];
        } else if (a.shape.size() == 2) {
            m.B = a.shape[0];
            m.S = a.shape[1];
        } else {
            fail("cli", "{} {}: expected shape [S] or [B, S], found {} dimensions", what, path,
                 a.shape.size());
        }
        for (int64_t i = 0; i < a.numel(); ++i)
            values.push_back(a.get_int(i));
    } else {
        std::ifstream in(path);
        if (!in) fail("cli", "{} {}: cannot open file", what, path);
        std::string line;
        int64_t lineno = 0;
        while (std::getline(in, line)) {
            ++lineno;
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            std::istringstream ss(line);
            std::string tok;
            int64_t n = 0;
            while (ss >> tok) {
                size_t used = 0;
                int64_t v = 0;
                try {
                    v = std::stoll(tok, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used != tok.size())
                    fail("cli", "{} {} line {}: expected an integer, found \"{}\"", what, path,
                         lineno, tok);
                values.push_back(v);
                ++n;
            }
            if (m.B > 0 && n != m.S)
                fail("cli",
                     "{} {} line {}: expected {} values like line 1 (ragged input), found {}", what,
                     path, lineno, m.S, n);
            m.S = n;
            ++m.B;
        }
    }
    if (m.B == 0 || m.S == 0)
        fail("cli", "{} {}: expected at least one value, found none", what, path);
    m.data.resize(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
        if (values[i] < lo || values[i] >= hi)
            fail("cli", "{} {}: value at row {} position {}: expected {} <= value < {}, found {}",
                 what, path, static_cast<int64_t>(i) / m.S, static_cast<int64_t>(i) % m.S, lo, hi,
                 values[i]);
        m.data[i] = static_cast<int32_t>(values[i]);
    }
    return m;
}

void write_run_json(const std::string& path,
                    const std::string& command,
                    const nlohmann::json& options,
                    const nlohmann::json& extra) {
    nlohmann::json j;
    j["schema"] = "polymoe.run/1";
    j["command"] = command;
    j["options"] = options;
    j["git_commit"] = core::git_commit();
    const dnnl_version_t* v = dnnl_version();
    j["versions"] = {{"onednn", fmt::format("{}.{}.{}", v->major, v->minor, v->patch)},
                     {"compiler", __VERSION__}};
    j["threads"] = num_threads();
    for (auto it = extra.begin(); it != extra.end(); ++it)
        j[it.key()] = it.value();
    write_output_file(path, j.dump(2) + "\n", "cli");
}

void write_output_file(const std::string& path, std::string_view text, std::string_view component) {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(parent, ec);
        if (ec)
            fail(component, "{}: cannot create the directory {}: {}", path, parent.string(),
                 ec.message());
    }
    const io::detail::Chunk chunk{text.data(), text.size()};
    io::detail::write_file_atomic(path, std::span<const io::detail::Chunk>(&chunk, 1), component);
}

void add_threads_option(CLI::App* app, int* threads) {
    app->add_option("--threads", *threads, "worker threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
}

void apply_threads(int threads) {
    set_num_threads(threads);
}

void add_weights_option(CLI::App* app, std::string* weights) {
    app->add_option("--weights", *weights,
                    "weight storage: f32 (every weight widened to f32 in memory) or bf16-resident "
                    "(GEMM weights only in bf16, memory-mapped from a bf16 checkpoint, bf16 "
                    "compute; bit-identical to bf16 compute, about half the memory)")
        ->check(CLI::IsMember({"f32", "bf16-resident"}))
        ->capture_default_str();
}

model::OlmoeWeights load_weights(const std::string& dir,
                                 const std::string& weights,
                                 bool bf16_compute) {
    if (weights == "bf16-resident")
        return model::load_checkpoint(dir, model::WeightsMode::Bf16Resident);
    model::OlmoeWeights w = model::load_checkpoint(dir);
    if (bf16_compute) w.set_compute_bf16();
    return w;
}

std::string resolve_prepared_data(const std::string& data, const std::string& prepare_into) {
    if (std::filesystem::is_directory(data)) {
        data::read_prepared_stats(data);  // a clear error if it is not a prepared directory
        return data;
    }
    data::Manifest m = data::load_manifest(data);
    data::PrepareOptions po;
    po.out_dir = prepare_into;
    po.tokenizer_path = tokenizer::default_tokenizer_path();
    po.dedup = m.dedup;
    po.repetition_filter = m.repetition_filter;
    auto tok = tokenizer::Tokenizer::from_file(po.tokenizer_path);
    const data::PrepareResult r = data::prepare(m, tok, po);
    fmt::print(stderr, "data: {} {}\n", r.up_to_date ? "up to date in" : "prepared into",
               po.out_dir);
    return po.out_dir;
}

model::Objective parse_objective(const std::string& s) {
    if (s == "ce") return model::Objective::Ce;
    if (s == "hf") return model::Objective::Hf;
    if (s == "hf_z") return model::Objective::HfZ;
    if (s == "olmoe") return model::Objective::Olmoe;
    throw UsageError(fmt::format("--objective: expected olmoe, hf, hf_z or ce, found \"{}\"", s));
}

}  // namespace polymoe::cli
