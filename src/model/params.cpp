// Parameter table, HF init, checkpoint load and save (see params.h).
#include "model/params.h"

#include <cmath>

#include "core/check.h"
#include "core/error.h"
#include "core/huge_pages.h"
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

OlmoeWeights::OlmoeWeights(const OlmoeConfig& c, bool allocate_slab) : config(c), table(c) {
    if (allocate_slab) resize_huge(slab, static_cast<size_t>(table.total()));
}

void OlmoeWeights::set_compute_bf16() {
    POLYMOE_CHECK(!resident, "bf16-resident weights already compute in bf16");
    resize_huge(slab_bf16, slab.size());
    refresh_bf16(0, static_cast<int64_t>(slab.size()));
}

void OlmoeWeights::refresh_bf16(int64_t offset, int64_t n) {
    if (slab_bf16.empty()) return;
    POLYMOE_CHECK(offset >= 0 && n >= 0 && offset + n <= static_cast<int64_t>(slab.size()),
                  "refresh_bf16: [{}, {}) outside the slab of {}", offset, offset + n, slab.size());
    bf16_t* dst = slab_bf16.data() + offset;
    const float* src = slab.data() + offset;
    parallel_for(n, 1 << 16, [=](int64_t b, int64_t e, int) {
        convert_from_f32(dst + b, DType::BF16, src + b, e - b);
    });
}

int64_t OlmoeWeights::master_offset(size_t i) const {
    if (!resident) return table.params()[i].offset;
    return resident->bf16[i] != nullptr ? -1 : resident->small_offset[i];
}

bool is_gemm_weight(ParamKind kind) {
    switch (kind) {
        case ParamKind::QProj:
        case ParamKind::KProj:
        case ParamKind::VProj:
        case ParamKind::OProj:
        case ParamKind::ExpertGate:
        case ParamKind::ExpertUp:
        case ParamKind::ExpertDown:
        case ParamKind::LmHead:
            return true;
        default:
            return false;
    }
}

namespace {

// Index of the parameter at (kind, layer) (the first expert for expert kinds), -1 if absent.
int64_t first_index(const ParamTable& t, ParamKind kind, int layer) {
    const bool expert = kind == ParamKind::ExpertGate || kind == ParamKind::ExpertUp ||
                        kind == ParamKind::ExpertDown;
    return t.index(kind, layer, expert ? 0 : -1);
}

kernels::Weight gemm_weight(const OlmoeWeights& w, ParamKind kind, int layer) {
    if (w.resident) {
        const int64_t i = first_index(w.table, kind, layer);
        POLYMOE_CHECK(i >= 0 && w.resident->bf16[static_cast<size_t>(i)] != nullptr,
                      "no bf16 weight for kind {} layer {}", static_cast<int>(kind), layer);
        return kernels::Weight(w.resident->bf16[static_cast<size_t>(i)]);
    }
    const int64_t off = w.table.offset(kind, layer);
    if (w.compute_bf16()) return kernels::Weight(w.slab_bf16.data() + off);
    return kernels::Weight(w.slab.data() + off);
}

// f32 values of the parameter at (kind, layer), nullptr when the config has none.
const float* f32_weight(const OlmoeWeights& w, ParamKind kind, int layer) {
    if (w.resident) {
        const int64_t i = first_index(w.table, kind, layer);
        if (i < 0) return nullptr;
        const int64_t off = w.resident->small_offset[static_cast<size_t>(i)];
        POLYMOE_CHECK(off >= 0, "no f32 weight for kind {} layer {}", static_cast<int>(kind),
                      layer);
        return w.resident->small.data() + off;
    }
    const int64_t off = w.table.offset(kind, layer);
    return off < 0 ? nullptr : w.slab.data() + off;
}

}  // namespace

LayerWeights OlmoeWeights::layer(int l) const {
    auto at = [&](ParamKind k) { return f32_weight(*this, k, l); };
    auto gemm = [&](ParamKind k) { return gemm_weight(*this, k, l); };
    return LayerWeights{
        at(ParamKind::InputNorm),   gemm(ParamKind::QProj),      gemm(ParamKind::KProj),
        gemm(ParamKind::VProj),     gemm(ParamKind::OProj),      at(ParamKind::QBias),
        at(ParamKind::KBias),       at(ParamKind::VBias),        at(ParamKind::OBias),
        at(ParamKind::QNorm),       at(ParamKind::KNorm),        at(ParamKind::PostNorm),
        at(ParamKind::RouterGate),  gemm(ParamKind::ExpertGate), gemm(ParamKind::ExpertUp),
        gemm(ParamKind::ExpertDown)};
}

const float* OlmoeWeights::embed() const {
    return f32_weight(*this, ParamKind::Embedding, -1);
}
const float* OlmoeWeights::final_norm() const {
    return f32_weight(*this, ParamKind::FinalNorm, -1);
}
kernels::Weight OlmoeWeights::lm_head() const {
    return gemm_weight(*this, config.tie_word_embeddings ? ParamKind::Embedding : ParamKind::LmHead,
                       -1);
}

void init_param(const OlmoeConfig& c, const ParamSpec& p, uint64_t seed, float* dst) {
    if (p.is_norm()) {
        std::fill(dst, dst + p.numel, 1.0f);
    } else if (p.is_bias()) {
        std::fill(dst, dst + p.numel, 0.0f);
    } else {
        const double std = c.initializer_range;
        const uint64_t key = rng_key(seed, p.name);
        parallel_for(p.numel, 4096, [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i)
                dst[i] = static_cast<float>(std * rng_normal(key, static_cast<uint64_t>(i)));
        });
    }
    // HF nn.Embedding(padding_idx=pad): the pad row is zeroed after the normal draw.
    if (p.kind == ParamKind::Embedding && c.pad_token_id) {
        float* row = dst + *c.pad_token_id * c.hidden_size;
        std::fill(row, row + c.hidden_size, 0.0f);
    }
}

void init_weights(OlmoeWeights& w, uint64_t seed) {
    for (const auto& p : w.table.params())
        init_param(w.config, p, seed, w.get(p));
}

void write_initialized_checkpoint(
    const OlmoeConfig& config, uint64_t seed, const std::string& dir, DType dtype, int num_shards) {
    if (dtype != DType::F32 && dtype != DType::BF16)
        fail("hf_checkpoint", "{}: expected dtype f32 or bf16 for writing, found {}", dir,
             dtype_name(dtype));
    const ParamTable table(config);
    std::vector<io::TensorToWrite> tensors;
    for (const auto& p : table.params()) {
        io::TensorToWrite t{p.name, dtype, p.shape, nullptr, {}};
        t.produce = [&config, &p, seed, dtype](void* dst) {
            if (dtype == DType::F32) {
                init_param(config, p, seed, static_cast<float*>(dst));
                return;
            }
            // Same rounding as save_checkpoint's whole-slab conversion, one tensor at a time.
            std::vector<float> f32(static_cast<size_t>(p.numel));
            init_param(config, p, seed, f32.data());
            auto* out = static_cast<bf16_t*>(dst);
            parallel_for(p.numel, 1 << 16, [&](int64_t b, int64_t e, int) {
                convert_from_f32(out + b, DType::BF16, f32.data() + b, e - b);
            });
        };
        tensors.push_back(std::move(t));
    }
    OlmoeConfig c = config;
    c.torch_dtype = dtype == DType::BF16 ? "bfloat16" : "float32";
    io::write_hf_checkpoint(dir, c.to_json(), generation_config_json(c), tensors, num_shards);
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

namespace {

// An opened checkpoint whose tensors all passed validation against the config's table.
struct ValidatedCheckpoint {
    std::shared_ptr<io::HfCheckpoint> ck;
    OlmoeConfig config;
    bool saw_bf16 = false;
};

ValidatedCheckpoint open_validated(const std::string& dir) {
    auto ck = std::make_shared<io::HfCheckpoint>(io::HfCheckpoint::open(dir));
    OlmoeConfig config = OlmoeConfig::from_json(ck->config(), dir + "/config.json");
    const ParamTable table(config);
    // Validate everything first: names, dtypes, shapes, nothing missing or extra.
    std::vector<std::string> missing, extra;
    bool saw_bf16 = false;
    for (const auto& p : table.params()) {
        const io::SafetensorsFile* file = nullptr;
        const io::TensorInfo* t = ck->find(p.name, &file);
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
    for (const auto& name : ck->tensor_names())
        if (!table.find(name)) extra.push_back(name);
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
    return {std::move(ck), std::move(config), saw_bf16};
}

// Widens one checkpoint tensor to f32, in parallel chunks: a single-threaded pass dominated
// `polymoe forward` on a 2 GB checkpoint.
void widen_tensor(float* dst, const io::HfCheckpoint& ck, const ParamSpec& p) {
    const io::SafetensorsFile* file = nullptr;
    const io::TensorInfo* t = ck.find(p.name, &file);
    const auto* src = static_cast<const uint8_t*>(file->data(*t));
    const int64_t esz = dtype_size(t->dtype);
    parallel_for(p.numel, 1 << 16, [&](int64_t b, int64_t e, int) {
        convert_to_f32(dst + b, src + b * esz, t->dtype, e - b);
    });
}

// bf16 copy of one checkpoint tensor, rounded through f32 exactly as load_checkpoint followed by
// set_compute_bf16() rounds it (so both modes see the same bf16 values for any source dtype).
void round_tensor(bf16_t* dst, const io::HfCheckpoint& ck, const ParamSpec& p) {
    const io::SafetensorsFile* file = nullptr;
    const io::TensorInfo* t = ck.find(p.name, &file);
    const auto* src = static_cast<const uint8_t*>(file->data(*t));
    const int64_t esz = dtype_size(t->dtype);
    parallel_for(p.numel, 1 << 16, [&](int64_t b, int64_t e, int) {
        std::vector<float> tmp(static_cast<size_t>(e - b));
        convert_to_f32(tmp.data(), src + b * esz, t->dtype, e - b);
        convert_from_f32(dst + b, DType::BF16, tmp.data(), e - b);
    });
}

// A run of GEMM parameters the kernels read as one array: one tensor, or the E experts of one
// (layer, kind) stacked [E, ...]. `first` indexes the table; the run's parameters are adjacent.
struct GemmRun {
    size_t first = 0, count = 0;
    int64_t numel = 0;
    const bf16_t* mapped = nullptr;  // the run inside a shard's mapping, or nullptr
};

// The run's data when its tensors are bf16, 2-byte aligned, in one shard and back to back in
// the order the stacked kernels index them; nullptr otherwise (then it needs an owned copy).
const bf16_t* mappable(const io::HfCheckpoint& ck, const ParamTable& t, const GemmRun& r) {
    const bf16_t* base = nullptr;
    const io::SafetensorsFile* first_file = nullptr;
    int64_t at = 0;
    for (size_t i = r.first; i < r.first + r.count; ++i) {
        const ParamSpec& p = t.params()[i];
        const io::SafetensorsFile* file = nullptr;
        const io::TensorInfo* info = ck.find(p.name, &file);
        if (info->dtype != DType::BF16) return nullptr;
        const auto* data = static_cast<const bf16_t*>(file->data(*info));
        if (i == r.first) {
            if (reinterpret_cast<uintptr_t>(data) % alignof(bf16_t) != 0) return nullptr;
            base = data;
            first_file = file;
        } else if (file != first_file || data != base + at) {
            return nullptr;
        }
        at += p.numel;
    }
    return base;
}

OlmoeWeights load_resident(ValidatedCheckpoint v) {
    OlmoeWeights w(OlmoeConfig(v.config), /*allocate_slab=*/false);
    const auto& params = w.table.params();
    const io::HfCheckpoint& ck = *v.ck;
    auto st = std::make_shared<ResidentStore>();
    st->bf16.assign(params.size(), nullptr);
    st->small_offset.assign(params.size(), -1);
    // The compact f32 store: everything that is not a GEMM weight.
    int64_t small_total = 0;
    for (size_t i = 0; i < params.size(); ++i) {
        if (is_gemm_weight(params[i].kind)) continue;
        st->small_offset[i] = small_total;
        small_total += params[i].numel;
    }
    resize_huge(st->small, static_cast<size_t>(small_total));
    for (size_t i = 0; i < params.size(); ++i)
        if (st->small_offset[i] >= 0)
            widen_tensor(st->small.data() + st->small_offset[i], ck, params[i]);
    // The bf16 runs: GEMM weights, and the embedding when it doubles as the lm head.
    std::vector<GemmRun> runs;
    for (size_t i = 0; i < params.size();) {
        const ParamSpec& p = params[i];
        const bool tied_head = p.kind == ParamKind::Embedding && w.config.tie_word_embeddings;
        if (!is_gemm_weight(p.kind) && !tied_head) {
            ++i;
            continue;
        }
        GemmRun r{i, 1, p.numel, nullptr};
        if (p.expert == 0) {
            while (r.first + r.count < params.size() && params[r.first + r.count].kind == p.kind &&
                   params[r.first + r.count].layer == p.layer)
                r.numel += params[r.first + r.count++].numel;
        }
        r.mapped = mappable(ck, w.table, r);
        runs.push_back(r);
        i += r.count;
    }
    int64_t owned_total = 0;
    for (const auto& r : runs)
        if (!r.mapped) owned_total += r.numel;
    resize_huge(st->owned, static_cast<size_t>(owned_total));
    int64_t owned_at = 0;
    for (const auto& r : runs) {
        const bf16_t* base = r.mapped;
        if (!base) {
            bf16_t* dst = st->owned.data() + owned_at;
            int64_t at = 0;
            for (size_t i = r.first; i < r.first + r.count; ++i) {
                round_tensor(dst + at, ck, params[i]);
                at += params[i].numel;
            }
            base = dst;
            owned_at += r.numel;
        } else {
            st->mapped_elements += r.numel;
        }
        int64_t at = 0;
        for (size_t i = r.first; i < r.first + r.count; ++i) {
            st->bf16[i] = base + at;
            at += params[i].numel;
        }
    }
    if (st->mapped_elements > 0) st->keep_alive.push_back(std::move(v.ck));
    w.resident = std::move(st);
    w.source_dtype = v.saw_bf16 ? DType::BF16 : DType::F32;
    return w;
}

}  // namespace

OlmoeWeights load_checkpoint(const std::string& dir, WeightsMode mode) {
    ValidatedCheckpoint v = open_validated(dir);
    if (mode == WeightsMode::Bf16Resident) return load_resident(std::move(v));
    OlmoeWeights w(v.config);
    for (const auto& p : w.table.params())
        widen_tensor(w.get(p), *v.ck, p);
    w.source_dtype = v.saw_bf16 ? DType::BF16 : DType::F32;
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
    const std::vector<float>& f32 = w.master();
    std::vector<uint16_t> bf16;
    if (dtype == DType::BF16) {
        bf16.resize(f32.size());
        convert_from_f32(bf16.data(), DType::BF16, f32.data(), static_cast<int64_t>(f32.size()));
    }
    std::vector<io::TensorToWrite> tensors;
    const auto& params = w.table.params();
    for (size_t i = 0; i < params.size(); ++i) {
        const ParamSpec& p = params[i];
        // bf16-resident: GEMM weights exist only in bf16 and are written as they are; the f32
        // store (what training updates) is written in `dtype`, so f32 keeps a trained router
        // exact for a bit-exact resume.
        if (w.resident && w.resident->small_offset[i] < 0) {
            tensors.push_back({p.name, DType::BF16, p.shape, w.resident->bf16[i]});
            continue;
        }
        const int64_t off = w.resident ? w.resident->small_offset[i] : p.offset;
        const void* data = dtype == DType::BF16 ? static_cast<const void*>(bf16.data() + off)
                                                : static_cast<const void*>(f32.data() + off);
        tensors.push_back({p.name, dtype, p.shape, data});
    }
    OlmoeConfig c = w.config;
    c.torch_dtype = dtype == DType::BF16 || w.resident ? "bfloat16" : "float32";
    io::write_hf_checkpoint(dir, c.to_json(), generation_config_json(c), tensors, num_shards,
                            overwrite, extra);
}

}  // namespace polymoe::model
