// OlmoeConfig: the model hyper-parameters, with the field names of Hugging Face's OlmoeConfig so
// that config.json maps 1:1. Parsing fills HF defaults for absent fields, rejects configs that are
// not OLMoE or use a feature polymoe does not implement (naming the field), and the presets of
// DESIGN.md (micro, tiny, olmoe-1b-7b) live here too.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace polymoe::model {

struct OlmoeConfig {
    int64_t vocab_size = 50304;
    int64_t hidden_size = 2048;
    int64_t intermediate_size = 2048;
    int64_t num_hidden_layers = 16;
    int64_t num_attention_heads = 16;
    int64_t num_key_value_heads = 16;
    std::string hidden_act = "silu";
    int64_t max_position_embeddings = 4096;
    double initializer_range = 0.02;
    double rms_norm_eps = 1e-5;
    bool use_cache = true;
    std::optional<int64_t> pad_token_id = 1;
    std::optional<int64_t> bos_token_id;
    std::optional<int64_t> eos_token_id = 50279;
    bool tie_word_embeddings = false;
    double rope_theta = 10000.0;
    bool attention_bias = false;
    double attention_dropout = 0.0;
    std::optional<double> clip_qkv;
    int64_t num_experts_per_tok = 8;
    int64_t num_experts = 64;
    bool output_router_logits = false;
    double router_aux_loss_coef = 0.01;
    bool norm_topk_prob = false;
    std::string torch_dtype = "float32";

    int64_t head_dim() const { return hidden_size / num_attention_heads; }
    int64_t q_width() const { return num_attention_heads * head_dim(); }
    int64_t kv_width() const { return num_key_value_heads * head_dim(); }

    // Parses an HF config.json object; `where` names the source in error messages.
    static OlmoeConfig from_json(const nlohmann::json& j, const std::string& where);
    nlohmann::json to_json() const;
    // Throws polymoe::Error if a value is out of range or unsupported.
    void validate(const std::string& where) const;
    // Sets one field from "key=value" text (the `--set` flag), value parsed as JSON when possible.
    void set_field(const std::string& key_value);
};

// Names of the built-in presets, and the config of one (throws on an unknown name).
std::vector<std::string> preset_names();
OlmoeConfig preset(const std::string& name);

// generation_config.json content for a config (bos/eos/pad ids), as transformers writes it.
nlohmann::json generation_config_json(const OlmoeConfig& c);

}  // namespace polymoe::model
