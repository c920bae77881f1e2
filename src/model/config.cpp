// OlmoeConfig parsing, validation and presets (see config.h).
#include "model/config.h"

#include "core/error.h"

namespace polymoe::model {

namespace {

// Visits every config.json field with its member, so parsing, writing and --set share one list.
template <typename C, typename V>
void visit_fields(C& c, V&& v) {
    v("vocab_size", c.vocab_size);
    v("hidden_size", c.hidden_size);
    v("intermediate_size", c.intermediate_size);
    v("num_hidden_layers", c.num_hidden_layers);
    v("num_attention_heads", c.num_attention_heads);
    v("num_key_value_heads", c.num_key_value_heads);
    v("hidden_act", c.hidden_act);
    v("max_position_embeddings", c.max_position_embeddings);
    v("initializer_range", c.initializer_range);
    v("rms_norm_eps", c.rms_norm_eps);
    v("use_cache", c.use_cache);
    v("pad_token_id", c.pad_token_id);
    v("bos_token_id", c.bos_token_id);
    v("eos_token_id", c.eos_token_id);
    v("tie_word_embeddings", c.tie_word_embeddings);
    v("rope_theta", c.rope_theta);
    v("attention_bias", c.attention_bias);
    v("attention_dropout", c.attention_dropout);
    v("clip_qkv", c.clip_qkv);
    v("num_experts_per_tok", c.num_experts_per_tok);
    v("num_experts", c.num_experts);
    v("output_router_logits", c.output_router_logits);
    v("router_aux_loss_coef", c.router_aux_loss_coef);
    v("norm_topk_prob", c.norm_topk_prob);
    v("torch_dtype", c.torch_dtype);
}

const char* json_type_name(const nlohmann::json& j) {
    return j.type_name();
}

template <typename T>
void read_value(const nlohmann::json& j, const std::string& key, T& out, const std::string& where) {
    using U = std::decay_t<T>;
    auto bad = [&](const char* expected) {
        fail("config", "{}: field \"{}\": expected {}, found {} ({})", where, key, expected,
             json_type_name(j), j.dump());
    };
    if constexpr (std::is_same_v<U, bool>) {
        if (!j.is_boolean()) bad("a boolean");
        out = j.get<bool>();
    } else if constexpr (std::is_same_v<U, int64_t>) {
        if (!j.is_number_integer()) bad("an integer");
        out = j.get<int64_t>();
    } else if constexpr (std::is_same_v<U, double>) {
        if (!j.is_number()) bad("a number");
        out = j.get<double>();
    } else if constexpr (std::is_same_v<U, std::string>) {
        if (!j.is_string()) bad("a string");
        out = j.get<std::string>();
    } else {  // std::optional<int64_t | double>
        using Inner = typename U::value_type;
        if (j.is_null()) {
            out.reset();
        } else {
            Inner x{};
            read_value(j, key, x, where);
            out = x;
        }
    }
}

template <typename T>
nlohmann::json write_value(const T& v) {
    if constexpr (requires { v.has_value(); }) {
        return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    } else {
        return nlohmann::json(v);
    }
}

}  // namespace

OlmoeConfig OlmoeConfig::from_json(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object())
        fail("config", "{}: expected a JSON object, found {}", where, j.type_name());
    auto mt = j.find("model_type");
    if (mt == j.end() || !mt->is_string() || mt->get<std::string>() != "olmoe")
        fail("config", "{}: field \"model_type\": expected \"olmoe\", found {}", where,
             mt == j.end() ? std::string("nothing") : mt->dump());
    OlmoeConfig c;
    bool kvh_given = false;
    visit_fields(c, [&](const char* key, auto& field) {
        auto it = j.find(key);
        if (it == j.end()) return;
        if (std::string_view(key) == "num_key_value_heads") {
            if (it->is_null()) return;
            kvh_given = true;
        }
        read_value(*it, key, field, where);
    });
    if (!kvh_given) c.num_key_value_heads = c.num_attention_heads;  // HF: None means MHA
    if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null())
        fail("config",
             "{}: field \"rope_scaling\": expected null (polymoe implements plain RoPE), "
             "found {}",
             where, rs->dump());
    c.validate(where);
    return c;
}

nlohmann::json OlmoeConfig::to_json() const {
    nlohmann::json j;
    j["architectures"] = {"OlmoeForCausalLM"};
    j["model_type"] = "olmoe";
    visit_fields(*this, [&](const char* key, const auto& field) { j[key] = write_value(field); });
    j["rope_scaling"] = nullptr;
    return j;
}

void OlmoeConfig::validate(const std::string& where) const {
    auto need = [&](bool ok, const char* field, const std::string& expected, auto found) {
        if (!ok)
            fail("config", "{}: field \"{}\": expected {}, found {}", where, field, expected,
                 found);
    };
    need(vocab_size > 0, "vocab_size", "> 0", vocab_size);
    need(hidden_size > 0, "hidden_size", "> 0", hidden_size);
    need(intermediate_size > 0, "intermediate_size", "> 0", intermediate_size);
    need(num_hidden_layers > 0, "num_hidden_layers", "> 0", num_hidden_layers);
    need(num_attention_heads > 0 && hidden_size % num_attention_heads == 0, "num_attention_heads",
         fmt::format("a divisor of hidden_size {}", hidden_size), num_attention_heads);
    need(head_dim() % 2 == 0, "num_attention_heads",
         "a head dim (hidden_size / num_attention_heads) that is even for RoPE", head_dim());
    need(num_key_value_heads > 0 && num_attention_heads % num_key_value_heads == 0,
         "num_key_value_heads",
         fmt::format("a divisor of num_attention_heads {}", num_attention_heads),
         num_key_value_heads);
    need(num_experts > 0, "num_experts", "> 0", num_experts);
    need(num_experts_per_tok > 0 && num_experts_per_tok <= num_experts, "num_experts_per_tok",
         fmt::format("in [1, num_experts = {}]", num_experts), num_experts_per_tok);
    need(hidden_act == "silu", "hidden_act", "\"silu\" (OLMoE's SwiGLU experts)", hidden_act);
    need(rms_norm_eps > 0, "rms_norm_eps", "> 0", rms_norm_eps);
    need(rope_theta > 0, "rope_theta", "> 0", rope_theta);
    need(!clip_qkv || *clip_qkv > 0, "clip_qkv", "null or > 0", clip_qkv.value_or(0));
    need(attention_dropout == 0.0, "attention_dropout", "0 (dropout is not implemented)",
         attention_dropout);
    need(!pad_token_id || (*pad_token_id >= 0 && *pad_token_id < vocab_size), "pad_token_id",
         fmt::format("null or in [0, {})", vocab_size), pad_token_id.value_or(-1));
}

void OlmoeConfig::set_field(const std::string& key_value) {
    auto eq = key_value.find('=');
    if (eq == std::string::npos)
        fail("config", "--set {}: expected key=value, found no '='", key_value);
    std::string key = key_value.substr(0, eq), text = key_value.substr(eq + 1);
    nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;  // bare strings such as bfloat16
    bool found = false;
    visit_fields(*this, [&](const char* k, auto& field) {
        if (key != k) return;
        found = true;
        read_value(value, key, field, "--set");
    });
    if (!found)
        fail("config", "--set {}: unknown field \"{}\" (not an OlmoeConfig field)", key_value, key);
}

std::vector<std::string> preset_names() {
    return {"micro", "tiny", "demo", "olmoe-1b-7b"};
}

OlmoeConfig preset(const std::string& name) {
    OlmoeConfig c;  // HF defaults = the released OLMoE-1B-7B-0924 config except I, k
    struct Dims {
        const char* name;
        int64_t V, H, I, L, NH, KVH, E, K, eos;
    };
    // clang-format off
    static const Dims kPresets[] = {
        {"micro",       256,   32,   16,   2,  4,  4,  8, 2, 255},
        {"tiny",        50304, 256,  128,  4,  8,  8,  16, 4, 50279},
        // The demo's base model: OLMoE's depth (16 layers, so "layer 15" is the last layer as in
        // OLMoE) and tokenizer at a width that pretrains in minutes on 2 cores.
        {"demo",        50304, 64,   64,   16, 4,  4,  16, 4, 50279},
        {"olmoe-1b-7b", 50304, 2048, 1024, 16, 16, 16, 64, 8, 50279},
    };
    // clang-format on
    for (const auto& d : kPresets) {
        if (name != d.name) continue;
        c.vocab_size = d.V;
        c.hidden_size = d.H;
        c.intermediate_size = d.I;
        c.num_hidden_layers = d.L;
        c.num_attention_heads = d.NH;
        c.num_key_value_heads = d.KVH;
        c.num_experts = d.E;
        c.num_experts_per_tok = d.K;
        c.eos_token_id = d.eos;
        return c;
    }
    std::string names;
    for (const auto& n : preset_names())
        names += (names.empty() ? "" : ", ") + n;
    fail("init", "--preset {}: expected one of {}", name, names);
}

nlohmann::json generation_config_json(const OlmoeConfig& c) {
    nlohmann::json j;
    j["_from_model_config"] = true;
    j["bos_token_id"] = write_value(c.bos_token_id);
    j["eos_token_id"] = write_value(c.eos_token_id);
    j["pad_token_id"] = write_value(c.pad_token_id);
    return j;
}

}  // namespace polymoe::model
