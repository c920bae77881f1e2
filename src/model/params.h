// The parameter table: every OLMoE parameter with its HF name, shape, kind, layer and expert,
// built from the config by one function. It drives init, load, save (and later the optimizer and
// golden comparisons). Values live in one float32 slab; the experts of one layer and kind are
// adjacent in the slab, so the HF per-expert tensors form stacked [E, I, H] / [E, H, I] arrays
// without copies (the layout the MoE kernels want).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "kernels/cpu/matmul.h"
#include "model/config.h"

namespace polymoe::model {

enum class ParamKind {
    Embedding,
    InputNorm,
    QProj,
    KProj,
    VProj,
    OProj,
    QBias,
    KBias,
    VBias,
    OBias,
    QNorm,
    KNorm,
    PostNorm,
    RouterGate,
    ExpertGate,
    ExpertUp,
    ExpertDown,
    FinalNorm,
    LmHead,
};

struct ParamSpec {
    std::string name;            // HF name, e.g. model.layers.3.mlp.experts.7.down_proj.weight
    std::vector<int64_t> shape;  // PyTorch order
    ParamKind kind;
    int layer = -1;      // -1 outside the layers
    int expert = -1;     // -1 unless an expert weight
    int64_t offset = 0;  // element offset in the slab
    int64_t numel = 0;
    bool is_norm() const;  // RMSNorm weights (init to one)
    bool is_bias() const;
};

class ParamTable {
public:
    explicit ParamTable(const OlmoeConfig& c);
    const std::vector<ParamSpec>& params() const { return params_; }
    int64_t total() const { return total_; }
    // nullptr if `name` is not a parameter of this config.
    const ParamSpec* find(const std::string& name) const;
    // Offset of the first parameter of (kind, layer); for experts the stack of all E experts.
    int64_t offset(ParamKind kind, int layer = -1) const;
    // Index in params() of (kind, layer, expert), or -1 when the config has no such parameter.
    int64_t index(ParamKind kind, int layer = -1, int expert = -1) const;

private:
    std::vector<ParamSpec> params_;
    std::unordered_map<std::string, size_t> by_name_;
    std::unordered_map<int64_t, size_t> by_slot_;  // packed (kind, layer, expert) -> index
    int64_t total_ = 0;
};

// Where each parameter's gradient lives (--trainable). A gradient buffer holds only the trainable
// parameters, packed in table order; a frozen parameter has offset -1 and no storage at all, and
// olmoe_forward_backward skips the work that only feeds frozen weight gradients. all() is the
// identity (gradient buffer = slab layout), what full training and the golden tests use.
struct GradLayout {
    std::vector<int64_t> offset;  // [params] offset in the gradient buffer, -1 = frozen
    int64_t total = 0;            // elements in the gradient buffer

    static GradLayout all(const ParamTable& t);
    // trainable: [params] 1 = trainable.
    static GradLayout subset(const ParamTable& t, const std::vector<uint8_t>& trainable);
    bool frozen(size_t i) const { return offset[i] < 0; }
};

// Pointers into the slab for one layer (nullptr for absent biases). GEMM weights are
// kernels::Weight: f32, or bf16 in bf16-compute mode (the router stays f32 either way, so routing
// decisions keep f32 logits).
struct LayerWeights {
    const float* input_norm;   // [H]
    kernels::Weight q_proj;    // [NH*HD, H]
    kernels::Weight k_proj;    // [KVH*HD, H]
    kernels::Weight v_proj;    // [KVH*HD, H]
    kernels::Weight o_proj;    // [H, NH*HD]
    const float* q_bias;       // [NH*HD] or nullptr
    const float* k_bias;       // [KVH*HD] or nullptr
    const float* v_bias;       // [KVH*HD] or nullptr
    const float* o_bias;       // [H] or nullptr
    const float* q_norm;       // [NH*HD]
    const float* k_norm;       // [KVH*HD]
    const float* post_norm;    // [H]
    const float* router;       // [E, H]
    kernels::Weight exp_gate;  // [E, I, H]
    kernels::Weight exp_up;    // [E, I, H]
    kernels::Weight exp_down;  // [E, H, I]
};

// Is `kind` a GEMM weight (attention projections, experts, lm head)? These are what the
// bf16-resident mode keeps only in bf16; everything else (embedding, norms, biases, routers) is
// small or needs f32 and stays in a compact f32 store. The embedding stays f32 (a row lookup, not
// a GEMM); when tied it is also the lm head and then has a bf16 copy as well.
bool is_gemm_weight(ParamKind kind);

// Storage of the bf16-resident mode (load_checkpoint with WeightsMode::Bf16Resident). GEMM
// weights are bf16 only: pointers into the memory-mapped safetensors shards when the tensor (for
// experts: the whole stacked [E, ...] run of one layer and kind) is bf16 and contiguous in one
// file, otherwise one owned bf16 copy, rounded from f32 exactly as set_compute_bf16() rounds the
// slab. The other parameters live widened to f32 in `small`.
struct ResidentStore {
    std::vector<std::shared_ptr<const void>> keep_alive;  // the open checkpoint (mappings)
    std::vector<bf16_t> owned;                            // bf16 copies of unmappable weights
    std::vector<const bf16_t*> bf16;                      // [params] bf16 data or nullptr
    std::vector<float> small;                             // f32 store of the other parameters
    std::vector<int64_t> small_offset;                    // [params] offset in small, -1 = none
    int64_t mapped_elements = 0;                          // GEMM elements served from the mmap
};

// A model's weights: config, table and the float32 slab (plus its bf16 copy in bf16-compute
// mode, used by the GEMMs). In bf16-resident mode the slab is empty and `resident` holds the
// weights instead (see ResidentStore); the forward is bit-identical to bf16-compute mode on the
// same checkpoint.
struct OlmoeWeights {
    OlmoeConfig config;
    ParamTable table;
    std::vector<float> slab;
    std::vector<bf16_t> slab_bf16;    // empty unless set_compute_bf16()
    DType source_dtype = DType::F32;  // dtype of the checkpoint it was loaded from
    // Set in bf16-resident mode only. Copies of an OlmoeWeights share it: training in this mode
    // updates `small` in place (see master()), for every copy.
    std::shared_ptr<ResidentStore> resident;

    // `allocate_slab` false leaves the slab empty (bf16-resident loading fills `resident`).
    explicit OlmoeWeights(const OlmoeConfig& c, bool allocate_slab = true);
    // Switches the GEMMs to bf16 weights and bf16-rounded inputs (f32 accumulation), from a bf16
    // copy of the slab (exact when the checkpoint was bf16).
    void set_compute_bf16();
    // Re-rounds slab[offset, offset + n) into the bf16 copy (after an optimizer step updated the
    // f32 master weights there); a no-op unless compute_bf16() with a slab.
    void refresh_bf16(int64_t offset, int64_t n);
    bool compute_bf16() const { return !slab_bf16.empty() || resident != nullptr; }
    bool bf16_resident() const { return resident != nullptr; }
    LayerWeights layer(int l) const;
    const float* embed() const;       // [V, H]
    const float* final_norm() const;  // [H]
    kernels::Weight lm_head() const;  // [V, H] (the embedding when tied)
    // The f32 values an optimizer updates: the slab, or in bf16-resident mode the compact f32
    // store of the non-GEMM parameters (routers, norms, biases, embedding).
    std::vector<float>& master() { return resident ? resident->small : slab; }
    const std::vector<float>& master() const { return resident ? resident->small : slab; }
    // Offset of parameter i in master(); -1 when it has no trainable f32 master: in bf16-resident
    // mode, a GEMM weight (bf16 only) or a tied embedding (its lm-head role is a bf16 copy).
    int64_t master_offset(size_t i) const;
    // f32 values of a parameter in the slab (not available in bf16-resident mode).
    float* get(const ParamSpec& p) { return slab.data() + p.offset; }
    const float* get(const ParamSpec& p) const { return slab.data() + p.offset; }
};

// HF init: normal(0, initializer_range) for linear and embedding weights from the counter RNG
// (core/rng.h, reproducible by tools/polymoe_rng.py), zero biases, unit norms, zero pad row.
void init_weights(OlmoeWeights& w, uint64_t seed);
// The same values for one parameter, into dst[p.numel].
void init_param(const OlmoeConfig& c, const ParamSpec& p, uint64_t seed, float* dst);

// Writes the checkpoint that init_weights(seed) + save_checkpoint(dtype, num_shards) writes, byte
// for byte, but generates each tensor just before it is written: peak memory is the largest
// tensor (in f32, plus its bf16 copy), not the f32 slab (27.6 GB for OLMoE-1B-7B).
void write_initialized_checkpoint(
    const OlmoeConfig& c, uint64_t seed, const std::string& dir, DType dtype, int num_shards);

// How load_checkpoint stores the weights. F32: everything widened into the f32 slab (training,
// f32 compute; set_compute_bf16() adds a bf16 copy). Bf16Resident: GEMM weights only in bf16,
// memory-mapped where possible (ResidentStore); implies bf16 compute, for inference at sizes
// whose f32 slab does not fit in memory (OLMoE-1B-7B: 27.6 GB f32, 13.8 GB bf16).
enum class WeightsMode { F32, Bf16Resident };

// Loads an HF checkpoint directory; every tensor is validated (name, dtype, shape) before any
// value is read. Missing, extra, wrongly shaped or typed tensors are reported by name.
OlmoeWeights load_checkpoint(const std::string& dir, WeightsMode mode = WeightsMode::F32);

// Writes an HF checkpoint directory with tensors of `dtype` (F32 or BF16) in `num_shards` files;
// `extra` as in io::write_hf_checkpoint. bf16-resident weights: GEMM weights are written in bf16
// as they are held, the other tensors in `dtype` (torch_dtype "bfloat16").
void save_checkpoint(const OlmoeWeights& w,
                     const std::string& dir,
                     DType dtype,
                     int num_shards,
                     bool overwrite = false,
                     const std::function<void(const std::string&)>& extra = {});

}  // namespace polymoe::model
