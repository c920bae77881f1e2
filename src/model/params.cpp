// Parameter table, HF init, checkpoint load and save (see params.h).
#include "model/params.h"

#include <cmath>

#include "core/check.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "io/hf_checkpoint.h"

namespace polymoe::model {

namespace {
int64_t slot_key(ParamKind kind, int layer, int expert) {
    return (static_cast<int64_t>(kind) << 40) | (static_cast<int64_t>(layer + 1) << 20) |
           static_cast<int64_t>(expert + 1);
}
}  // namespace

bool ParamSpec::is_norm() const {
    return kind == ParamKind::InputNorm || kind == ParamKind::PostNorm ||
           kind == ParamKind::QNorm || kind == ParamKind::KNorm || kind == ParamKind::FinalNorm;
}

bool ParamSpec::is_bias() const {
    return kind == ParamKind::QBias || kind == ParamKind::KBias || kind == ParamKind::VBias ||
           kind == ParamKind::OBias;
}

ParamTable::ParamTable(const OlmoeConfig& c) {
    const int64_t V = c.vocab_size, H = c.hidden_size, I = c.intermediate_size;
    const int64_t QW = c.q_width(), KW = c.kv_width(), E = c.num_experts;
    auto add = [&](std::string name, std::vector<int64_t> shape, ParamKind kind, int layer = -1,
                   int expert = -1) {
        ParamSpec p{std::move(name), std::move(shape), kind, layer, expert, total_, 1};
        for (int64_t d : p.shape)
            p.numel *= d;
        total_ += p.numel;
        by_name_[p.name] = params_.size();
        by_slot_[slot_key(kind, layer, expert)] = params_.size();
        params_.push_back(std::move(p));
    };
    add("model.embed_tokens.weight", {V, H}, ParamKind::Embedding);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const std::string pre = fmt::format("model.layers.{}.", l);
        add(pre + "input_layernorm.weight", {H}, ParamKind::InputNorm, l);
        add(pre + "self_attn.q_proj.weight", {QW, H}, ParamKind::QProj, l);
        add(pre + "self_attn.k_proj.weight", {KW, H}, ParamKind::KProj, l);
        add(pre + "self_attn.v_proj.weight", {KW, H}, ParamKind::VProj, l);
        add(pre + "self_attn.o_proj.weight", {H, QW}, ParamKind::OProj, l);
        if (c.attention_bias) {
            add(pre + "self_attn.q_proj.bias", {QW}, ParamKind::QBias, l);
            add(pre + "self_attn.k_proj.bias", {KW}, ParamKind::KBias, l);
            add(pre + "self_attn.v_proj.bias", {KW}, ParamKind::VBias, l);
            add(pre + "self_attn.o_proj.bias", {H}, ParamKind::OBias, l);
        }
        add(pre + "self_attn.q_norm.weight", {QW}, ParamKind::QNorm, l);
        add(pre + "self_attn.k_norm.weight", {KW}, ParamKind::KNorm, l);
        add(pre + "post_attention_layernorm.weight", {H}, ParamKind::PostNorm, l);
        add(pre + "mlp.gate.weight", {E, H}, ParamKind::RouterGate, l);
        // Each kind's E experts are adjacent: a stacked [E, ...] array in the slab.
        for (int e = 0; e < E; ++e)
            add(fmt::format("{}mlp.experts.{}.gate_proj.weight", pre, e), {I, H},
                ParamKind::ExpertGate, l, e);
        for (int e = 0; e < E; ++e)
            add(fmt::format("{}mlp.experts.{}.up_proj.weight", pre, e), {I, H}, ParamKind::ExpertUp,
                l, e);
        for (int e = 0; e < E; ++e)
            add(fmt::format("{}mlp.experts.{}.down_proj.weight", pre, e), {H, I},
                ParamKind::ExpertDown, l, e);
    }
    add("model.norm.weight", {H}, ParamKind::FinalNorm);
    if (!c.tie_word_embeddings) add("lm_head.weight", {V, H}, ParamKind::LmHead);
}

const ParamSpec* ParamTable::find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &params_[it->second];
}

int64_t ParamTable::offset(ParamKind kind, int layer) const {
    const bool expert = kind == ParamKind::ExpertGate || kind == ParamKind::ExpertUp ||
                        kind == ParamKind::ExpertDown;
    const int64_t i = index(kind, layer, expert ? 0 : -1);
    return i < 0 ? -1 : params_[static_cast<size_t>(i)].offset;
}

int64_t ParamTable::index(ParamKind kind, int layer, int expert) const {
    auto it = by_slot_.find(slot_key(kind, layer, expert));
    return it == by_slot_.end() ? -1 : static_cast<int64_t>(it->second);
}

GradLayout GradLayout::all(const ParamTable& t) {
    GradLayout g;
    for (const auto& p : t.params())
        g.offset.push_back(p.offset);
    g.total = t.total();
    return g;
}

GradLayout GradLayout::subset(const ParamTable& t, const std::vector<uint8_t>& trainable) {
    POLYMOE_CHECK(trainable.size() == t.params().size(), "trainable mask of {} for {} params",
                  trainable.size(), t.params().size());
    GradLayout g;
    for (size_t i = 0; i < trainable.size(); ++i) {
        g.offset.push_back(trainable[i] ? g.total : -1);
        if (trainable[i]) g.total += t.params()[i].numel;
    }
    return g;
}

OlmoeWeights::OlmoeWeights(const OlmoeConfig& c)
    : config(c), table(c), slab(static_cast<size_t>(table.total()), 0.0f) {}

void OlmoeWeights::set_compute_bf16() {
    slab_bf16.resize(slab.size());
    parallel_for(static_cast<int64_t>(slab.size()), 1 << 16, [&](int64_t b, int64_t e, int) {
        convert_from_f32(slab_bf16.data() + b, DType::BF16, slab.data() + b, e - b);
    });
}

namespace {
kernels::Weight gemm_weight(const OlmoeWeights& w, int64_t off) {
    if (w.compute_bf16()) return kernels::Weight(w.slab_bf16.data() + off);
    return kernels::Weight(w.slab.data() + off);
}
}  // namespace

LayerWeights OlmoeWeights::layer(int l) const {
    auto at = [&](ParamKind k) -> const float* {
        int64_t off = table.offset(k, l);
        return off < 0 ? nullptr : slab.data() + off;
    };
    auto gemm = [&](ParamKind k) { return gemm_weight(*this, table.offset(k, l)); };
    return LayerWeights{
        at(ParamKind::InputNorm),   gemm(ParamKind::QProj),      gemm(ParamKind::KProj),
        gemm(ParamKind::VProj),     gemm(ParamKind::OProj),      at(ParamKind::QBias),
        at(ParamKind::KBias),       at(ParamKind::VBias),        at(ParamKind::OBias),
        at(ParamKind::QNorm),       at(ParamKind::KNorm),        at(ParamKind::PostNorm),
        at(ParamKind::RouterGate),  gemm(ParamKind::ExpertGate), gemm(ParamKind::ExpertUp),
        gemm(ParamKind::ExpertDown)};
}

const float* OlmoeWeights::embed() const {
    return slab.data() + table.offset(ParamKind::Embedding);
}
const float* OlmoeWeights::final_norm() const {
    return slab.data() + table.offset(ParamKind::FinalNorm);
}
kernels::Weight OlmoeWeights::lm_head() const {
    return gemm_weight(
        *this, table.offset(config.tie_word_embeddings ? ParamKind::Embedding : ParamKind::LmHead));
}

void init_weights(OlmoeWeights& w, uint64_t seed) {
    const double std = w.config.initializer_range;
    for (const auto& p : w.table.params()) {
        float* dst = w.get(p);
        if (p.is_norm()) {
            std::fill(dst, dst + p.numel, 1.0f);
        } else if (p.is_bias()) {
            std::fill(dst, dst + p.numel, 0.0f);
        } else {
            const uint64_t key = rng_key(seed, p.name);
            parallel_for(p.numel, 4096, [&](int64_t b, int64_t e, int) {
                for (int64_t i = b; i < e; ++i)
                    dst[i] = static_cast<float>(std * rng_normal(key, static_cast<uint64_t>(i)));
            });
        }
    }
    // HF nn.Embedding(padding_idx=pad): the pad row is zeroed after the normal draw.
    if (w.config.pad_token_id) {
        const int64_t H = w.config.hidden_size;
        float* row = w.get(*w.table.find("model.embed_tokens.weight")) + *w.config.pad_token_id * H;
        std::fill(row, row + H, 0.0f);
    }
}

namespace {

std::string dims_hint(const ParamSpec& p) {
    switch (p.kind) {
        case ParamKind::Embedding:
        case ParamKind::LmHead:
            return " (V, H)";
        case ParamKind::RouterGate:
            return " (E, H)";
        case ParamKind::ExpertGate:
        case ParamKind::ExpertUp:
            return " (I, H)";
        case ParamKind::ExpertDown:
            return " (H, I)";
        case ParamKind::QProj:
            return " (NH*HD, H)";
        case ParamKind::KProj:
        case ParamKind::VProj:
            return " (KVH*HD, H)";
        case ParamKind::OProj:
            return " (H, NH*HD)";
        default:
            return "";
    }
}

}  // namespace

OlmoeWeights load_checkpoint(const std::string& dir) {
    io::HfCheckpoint ck = io::HfCheckpoint::open(dir);
    OlmoeWeights w(OlmoeConfig::from_json(ck.config(), dir + "/config.json"));
    // Validate everything first: names, dtypes, shapes, nothing missing or extra.
    std::vector<std::string> missing, extra;
    bool saw_bf16 = false;
    for (const auto& p : w.table.params()) {
        const io::SafetensorsFile* file = nullptr;
        const io::TensorInfo* t = ck.find(p.name, &file);
        if (!t) {
            missing.push_back(p.name);
            continue;
        }
        if (t->dtype != DType::F32 && t->dtype != DType::BF16 && t->dtype != DType::F16 &&
            t->dtype != DType::F64)
            fail("hf_checkpoint", "{}: expected dtype F32, BF16, F16 or F64, found {} in {}",
                 p.name, dtype_name(t->dtype), file->path());
        if (t->shape != p.shape)
            fail("hf_checkpoint", "{}: expected {}{}, found {} in {}", p.name,
                 io::shape_str(p.shape), dims_hint(p), io::shape_str(t->shape), file->path());
        saw_bf16 |= t->dtype == DType::BF16;
    }
    for (const auto& name : ck.tensor_names())
        if (!w.table.find(name)) extra.push_back(name);
    auto list = [](const std::vector<std::string>& v) {
        std::string s;
        for (size_t i = 0; i < v.size() && i < 5; ++i)
            s += (i ? ", " : "") + v[i];
        if (v.size() > 5) s += fmt::format(", ... ({} in all)", v.size());
        return s;
    };
    if (!missing.empty())
        fail("hf_checkpoint", "{}: missing tensors for this config.json: {}", dir, list(missing));
    if (!extra.empty())
        fail("hf_checkpoint",
             "{}: unexpected tensors (not OLMoE parameters for this config.json): {}", dir,
             list(extra));
    // Widen to f32 in parallel chunks: a single-threaded pass dominated `polymoe forward` on a
    // 2 GB checkpoint.
    for (const auto& p : w.table.params()) {
        const io::SafetensorsFile* file = nullptr;
        const io::TensorInfo* t = ck.find(p.name, &file);
        const auto* src = static_cast<const uint8_t*>(file->data(*t));
        const int64_t esz = dtype_size(t->dtype);
        float* dst = w.get(p);
        parallel_for(p.numel, 1 << 16, [&](int64_t b, int64_t e, int) {
            convert_to_f32(dst + b, src + b * esz, t->dtype, e - b);
        });
    }
    w.source_dtype = saw_bf16 ? DType::BF16 : DType::F32;
    return w;
}

void save_checkpoint(const OlmoeWeights& w,
                     const std::string& dir,
                     DType dtype,
                     int num_shards,
                     bool overwrite,
                     const std::function<void(const std::string&)>& extra) {
    if (dtype != DType::F32 && dtype != DType::BF16)
        fail("hf_checkpoint", "{}: expected dtype f32 or bf16 for writing, found {}", dir,
             dtype_name(dtype));
    std::vector<uint16_t> bf16;
    if (dtype == DType::BF16) {
        bf16.resize(w.slab.size());
        convert_from_f32(bf16.data(), DType::BF16, w.slab.data(),
                         static_cast<int64_t>(w.slab.size()));
    }
    std::vector<io::TensorToWrite> tensors;
    for (const auto& p : w.table.params()) {
        const void* data = dtype == DType::BF16 ? static_cast<const void*>(bf16.data() + p.offset)
                                                : static_cast<const void*>(w.get(p));
        tensors.push_back({p.name, dtype, p.shape, data});
    }
    OlmoeConfig c = w.config;
    c.torch_dtype = dtype == DType::BF16 ? "bfloat16" : "float32";
    io::write_hf_checkpoint(dir, c.to_json(), generation_config_json(c), tensors, num_shards,
                            overwrite, extra);
}

}  // namespace polymoe::model
