// Helpers shared by the subcommands: the run record (run.json), token-matrix input (.npy or
// text), and CLI11 conventions (every command has --threads; unknown flags are usage errors).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/olmoe.h"
#include "model/params.h"

namespace polymoe::cli {

// A [B, S] int matrix read from .npy ([S] or [B, S], any integer dtype) or text (one row per
// line, ints separated by spaces, all rows the same length).
struct TokenMatrix {
    int64_t B = 0, S = 0;
    std::vector<int32_t> data;
};
// `what` names the flag in messages ("--tokens"); values must lie in [lo, hi).
TokenMatrix read_token_matrix(const std::string& path,
                              const std::string& what,
                              int64_t lo,
                              int64_t hi);

// Writes a command's output file: creates the parent directory, writes `text` under a temporary
// name, fsyncs and renames it into place (io/file_util.h), so a crash or a full disk never leaves
// a truncated result; errors name the file and the system's reason (polymoe::Error).
void write_output_file(const std::string& path, std::string_view text, std::string_view component);

// Writes run.json: the command, its effective options, git commit, versions, and `extra`
// (e.g. the model config). `path` is DIR/run.json or FILE.run.json.
void write_run_json(const std::string& path,
                    const std::string& command,
                    const nlohmann::json& options,
                    const nlohmann::json& extra);

// --data of train/trace/eval/ablate: a prepared directory is used as it is (its stats.json must
// exist); a corpus manifest is prepared into `prepare_into` first (a no-op when up to date,
// with the shipped tokenizer and the manifest's filters). Returns the prepared directory.
std::string resolve_prepared_data(const std::string& data, const std::string& prepare_into);

// Adds --threads N to a subcommand; apply_threads() sets it before the work starts.
// --objective value (olmoe|hf|hf_z|ce; CLI11 checks the set, so anything else is a UsageError).
model::Objective parse_objective(const std::string& s);

void add_threads_option(CLI::App* app, int* threads);
void apply_threads(int threads);

// Adds --weights f32|bf16-resident to a subcommand that runs inference. bf16-resident keeps the
// GEMM weights only in bf16 (memory-mapped from a bf16 checkpoint) and computes in bf16: the
// mode for checkpoints whose f32 copy does not fit in memory (model::WeightsMode).
void add_weights_option(CLI::App* app, std::string* weights);
// Loads `dir` as --weights asks; with f32 weights, `bf16_compute` adds the bf16 GEMM copy.
model::OlmoeWeights load_weights(const std::string& dir,
                                 const std::string& weights,
                                 bool bf16_compute);

}  // namespace polymoe::cli
