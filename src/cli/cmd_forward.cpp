// polymoe forward: run the model on a [B, S] token matrix and write every tensor of the CLI
// contract (logits, per-layer router logits/probs/top-k/margins, losses) to one safetensors file.
#include <map>

#include "cli/common.h"
#include "core/error.h"
#include "core/timer.h"
#include "io/safetensors.h"
#include "model/olmoe.h"

namespace polymoe::cli {

namespace {

struct ForwardOptions {
    std::string model, tokens, mask, out;
    std::string compute = "f32";
    std::string weights = "f32";
    int threads = 0;
};

// Keeps copies of the router outputs of every layer for the output file.
class RouterDump : public model::ForwardObserver {
public:
    std::map<std::string, std::vector<float>> f32;
    std::map<std::string, std::vector<int64_t>> i64;
    void on_router(int l,
                   int64_t T,
                   int64_t E,
                   int64_t K,
                   const float* logits,
                   const float* probs,
                   const int32_t* idx,
                   const float* w,
                   const float* margin) override {
        f32[fmt::format("router_logits.{}", l)].assign(logits, logits + T * E);
        f32[fmt::format("router_probs.{}", l)].assign(probs, probs + T * E);
        f32[fmt::format("topk_weight.{}", l)].assign(w, w + T * K);
        f32[fmt::format("routing_margin.{}", l)].assign(margin, margin + T);
        i64[fmt::format("topk_idx.{}", l)].assign(idx, idx + T * K);
    }
};

}  // namespace

std::function<void()> register_forward(CLI::App& app) {
    auto o = std::make_shared<ForwardOptions>();
    CLI::App* c = app.add_subcommand("forward", "run the model and write logits, routing, losses");
    c->add_option("--model", o->model, "HF checkpoint directory")->required();
    c->add_option("--tokens", o->tokens, ".npy [S] or [B,S] int array, or text (one row per line)")
        ->required();
    c->add_option("--attention-mask", o->mask, "same shape and format; 1 = token, 0 = padding");
    c->add_option("--out", o->out, "output .safetensors file")->required();
    CLI::Option* compute =
        c->add_option("--compute", o->compute,
                      "GEMM precision: f32 (exact f32 math) or bf16 (bf16 weights and inputs, f32 "
                      "accumulation; faster, ~1e-2 relative error)")
            ->check(CLI::IsMember({"f32", "bf16"}))
            ->capture_default_str();
    add_weights_option(c, &o->weights);
    add_threads_option(c, &o->threads);
    return [o, compute] {
        apply_threads(o->threads);
        if (o->weights == "bf16-resident") {
            // Resident weights are bf16: they compute in bf16 (an explicit f32 is a contradiction).
            if (compute->count() > 0 && o->compute != "bf16")
                throw UsageError(fmt::format(
                    "[forward] --compute {}: expected bf16 with --weights bf16-resident (its GEMM "
                    "weights exist only in bf16), found {}",
                    o->compute, o->compute));
            o->compute = "bf16";
        }
        Timer timer;
        model::OlmoeWeights w = load_weights(o->model, o->weights, o->compute == "bf16");
        const auto& cfg = w.config;
        TokenMatrix ids = read_token_matrix(o->tokens, "--tokens", 0, cfg.vocab_size);
        TokenMatrix mask;
        if (!o->mask.empty()) {
            mask = read_token_matrix(o->mask, "--attention-mask", 0, 2);
            if (mask.B != ids.B || mask.S != ids.S)
                fail("forward",
                     "--attention-mask {}: expected shape [{}, {}] like --tokens, found [{}, {}]",
                     o->mask, ids.B, ids.S, mask.B, mask.S);
        }
        const double load_s = timer.seconds();
        model::Activations acts;
        model::allocate_activations(acts, cfg, ids.B, ids.S, true);
        RouterDump dump;
        Timer fwd;
        model::ForwardResult r = model::olmoe_forward(
            acts, w, ids.data.data(), mask.data.empty() ? nullptr : mask.data.data(), ids.B, ids.S,
            &dump);
        const double fwd_s = fwd.seconds();

        const int64_t T = ids.B * ids.S;
        std::vector<io::TensorToWrite> out;
        out.push_back({"logits", DType::F32, {ids.B, ids.S, cfg.vocab_size}, acts.logits.data()});
        for (const auto& [name, v] : dump.f32) {
            const int64_t cols = static_cast<int64_t>(v.size()) / T;
            std::vector<int64_t> shape =
                cols == 1 ? std::vector<int64_t>{T} : std::vector<int64_t>{T, cols};
            out.push_back({name, DType::F32, shape, v.data()});
        }
        for (const auto& [name, v] : dump.i64)
            out.push_back({name, DType::I64, {T, cfg.num_experts_per_tok}, v.data()});
        const std::vector<std::pair<std::string, double>> losses = {
            {"loss.ce", r.ce},
            {"loss.aux", r.aux},
            {"loss.z", r.z},
            {"loss.megablocks_lb", r.megablocks_lb},
            {"loss.megablocks_z", r.megablocks_z},
            {"loss.hf_total", r.hf_total},
            {"loss.olmoe_total", r.olmoe_total}};
        std::vector<float> loss_values;
        loss_values.reserve(losses.size());
        for (const auto& [name, v] : losses)
            loss_values.push_back(static_cast<float>(v));
        for (size_t i = 0; i < losses.size(); ++i)
            out.push_back({losses[i].first, DType::F32, {1}, &loss_values[i]});
        io::write_safetensors(o->out, out);

        nlohmann::json loss_json;
        for (const auto& [name, v] : losses)
            loss_json[name] = v;
        write_run_json(
            o->out + ".run.json", "forward",
            {{"model", o->model},
             {"tokens", o->tokens},
             {"attention_mask", o->mask},
             {"out", o->out},
             {"compute", o->compute},
             {"weights", o->weights}},
            {{"model_config", cfg.to_json()},
             {"shape", {{"B", ids.B}, {"S", ids.S}}},
             {"losses", loss_json},
             {"seconds", {{"load", load_s}, {"forward", fwd_s}, {"total", timer.seconds()}}},
             {"tokens_per_second", static_cast<double>(T) / fwd_s}});
        fmt::print(stderr,
                   "forward: B={} S={} ce={:.6f} aux={:.6f} in {:.3f} s ({:.0f} tokens/s)\n", ids.B,
                   ids.S, r.ce, r.aux, fwd_s, static_cast<double>(T) / fwd_s);
    };
}

}  // namespace polymoe::cli
