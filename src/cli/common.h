// Helpers shared by the subcommands: the run record (run.json), token-matrix input (.npy or
// text), and CLI11 conventions (every command has --threads; unknown flags are usage errors).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/olmoe.h"

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

}  // namespace polymoe::cli
