// polymoe init: a random checkpoint with HF's init (normal(0, initializer_range) linear and
// embedding weights, unit norms, zero pad row) from a preset and --set overrides, written as an
// HF directory (F32 or BF16, one or more shards). Tensors are generated one at a time as they are
// written, so the real OLMoE-1B-7B size (27.6 GB as an f32 slab) initialises in little memory.
#include <filesystem>

#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "model/params.h"

namespace polymoe::cli {

namespace {
struct InitOptions {
    std::string preset;
    std::vector<std::string> sets;
    std::string out;
    std::string dtype = "f32";
    uint64_t seed = 0;
    int shards = 1;
    int threads = 0;
};
}  // namespace

std::function<void()> register_init(CLI::App& app) {
    auto o = std::make_shared<InitOptions>();
    CLI::App* c = app.add_subcommand("init", "create a randomly initialised OLMoE checkpoint");
    c->add_option("--preset", o->preset, "micro, tiny or olmoe-1b-7b")->required();
    c->add_option("--set", o->sets, "override a config field: key=value (repeatable)");
    c->add_option("--out", o->out, "output checkpoint directory (must not exist)")->required();
    c->add_option("--dtype", o->dtype, "f32 or bf16")
        ->check(CLI::IsMember({"f32", "bf16"}))
        ->capture_default_str();
    c->add_option("--seed", o->seed, "random seed")->capture_default_str();
    c->add_option("--shards", o->shards, "number of safetensors files")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    add_threads_option(c, &o->threads);
    return [o] {
        apply_threads(o->threads);
        Timer timer;
        model::OlmoeConfig cfg = model::preset(o->preset);
        for (const auto& s : o->sets)
            cfg.set_field(s);
        cfg.validate("--preset " + o->preset + " with --set");
        const DType dt = o->dtype == "bf16" ? DType::BF16 : DType::F32;
        model::write_initialized_checkpoint(cfg, o->seed, o->out, dt, o->shards);
        write_run_json(o->out + "/run.json", "init",
                       {{"preset", o->preset},
                        {"set", o->sets},
                        {"out", o->out},
                        {"dtype", o->dtype},
                        {"seed", o->seed},
                        {"shards", o->shards}},
                       {{"model_config", cfg.to_json()}, {"seconds", timer.seconds()}});
        fmt::print(stderr, "init: wrote {} ({} parameters, {}) in {:.2f} s\n", o->out,
                   model::ParamTable(cfg).total(), o->dtype, timer.seconds());
    };
}

}  // namespace polymoe::cli
