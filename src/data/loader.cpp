// Mixture sampling and packing for training batches (see loader.h).
#include "data/loader.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace polymoe::data {

MixPolicy parse_mix_policy(const std::string& s) {
    if (s == "uniform") return MixPolicy::kUniform;
    if (s == "proportional") return MixPolicy::kProportional;
    if (s == "temperature") return MixPolicy::kTemperature;
    if (s == "unimax") return MixPolicy::kUniMax;
    throw UsageError(fmt::format(
        "[data] mixture policy: expected uniform, proportional, temperature or unimax, found "
        "\"{}\"",
        s));
}

const char* mix_policy_name(MixPolicy p) {
    switch (p) {
        case MixPolicy::kUniform:
            return "uniform";
        case MixPolicy::kProportional:
            return "proportional";
        case MixPolicy::kTemperature:
            return "temperature";
        case MixPolicy::kUniMax:
            return "unimax";
    }
    return "?";
}

namespace {

// Policy weights within one group (normalised to sum 1, or all 0 for an empty group).
std::vector<double> group_weights(const std::vector<int64_t>& n,
                                  const MixtureOptions& o,
                                  double budget) {
    std::vector<double> w(n.size(), 0.0);
    if (n.empty()) return w;
    switch (o.policy) {
        case MixPolicy::kUniform:
            std::fill(w.begin(), w.end(), 1.0);
            break;
        case MixPolicy::kProportional:
            for (size_t i = 0; i < n.size(); ++i)
                w[i] = static_cast<double>(n[i]);
            break;
        case MixPolicy::kTemperature:
            for (size_t i = 0; i < n.size(); ++i)
                w[i] = std::pow(static_cast<double>(n[i]), 1.0 / o.temperature);
            break;
        case MixPolicy::kUniMax: {
            std::vector<size_t> order(n.size());
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(),
                             [&](size_t a, size_t b) { return n[a] < n[b]; });
            double left = budget;
            for (size_t k = 0; k < order.size(); ++k) {
                double share = left / static_cast<double>(order.size() - k);
                double cap =
                    o.max_epochs > 0 ? o.max_epochs * static_cast<double>(n[order[k]]) : share;
                w[order[k]] = std::min(share, cap);
                left -= w[order[k]];
            }
            break;
        }
    }
    double s = std::accumulate(w.begin(), w.end(), 0.0);
    for (double& x : w)
        x = s > 0 ? x / s : 0.0;
    return w;
}

}  // namespace

std::vector<double> mixture_probabilities(const std::vector<int64_t>& tokens,
                                          const std::vector<bool>& replay,
                                          const MixtureOptions& o) {
    if (o.policy == MixPolicy::kTemperature && !(o.temperature > 0))
        throw UsageError(fmt::format("[data] temperature: expected > 0, found {}", o.temperature));
    if (o.policy == MixPolicy::kUniMax && o.budget_tokens <= 0)
        throw UsageError("[data] unimax: expected a positive token budget, found none");
    if (!(o.replay >= 0 && o.replay < 1))
        throw UsageError(
            fmt::format("[data] replay: expected a share in [0, 1), found {}", o.replay));
    std::vector<int64_t> a, b;
    for (size_t i = 0; i < tokens.size(); ++i)
        (replay[i] ? b : a).push_back(tokens[i]);
    if (a.empty()) fail("data", "mixture: expected at least one language of the stage, found none");
    double r = b.empty() ? 0.0 : o.replay;
    auto wa = group_weights(a, o, static_cast<double>(o.budget_tokens) * (1 - r));
    auto wb = group_weights(b, o, static_cast<double>(o.budget_tokens) * r);
    std::vector<double> p(tokens.size());
    size_t ia = 0, ib = 0;
    for (size_t i = 0; i < tokens.size(); ++i)
        p[i] = replay[i] ? r * wb[ib++] : (1 - r) * wa[ia++];
    return p;
}

BatchLoader::BatchLoader(std::vector<LoaderLanguage> langs,
                         MixtureOptions mix,
                         int64_t batch,
                         int64_t seq,
                         int32_t eos_id,
                         uint64_t seed,
                         int rank,
                         int world)
    : langs_(std::move(langs)),
      mix_(mix),
      B_(batch),
      S_(seq),
      eos_(eos_id),
      seed_(seed),
      rank_(rank),
      world_(world) {
    if (world_ < 1 || rank_ < 0 || rank_ >= world_)
        fail("data", "loader: expected 0 <= rank < world, found rank {} of {}", rank_, world_);
    std::vector<int64_t> n;
    std::vector<bool> rp;
    for (const auto& l : langs_) {
        if (l.shards->num_documents() <= rank_ || l.shards->num_tokens() == 0)
            fail("data",
                 "loader: language {}: expected training documents for rank {} of {}, "
                 "found {} documents ({} tokens)",
                 l.code, rank_, world_, l.shards->num_documents(), l.shards->num_tokens());
        n.push_back(l.shards->num_tokens());
        rp.push_back(l.replay);
    }
    p_ = mixture_probabilities(n, rp, mix_);
    cur_.resize(langs_.size());
    for (size_t i = 0; i < langs_.size(); ++i)
        build_perm(static_cast<int>(i));
}

void BatchLoader::build_perm(int li) {
    Cursor& c = cur_[li];
    c.perm.clear();
    for (int64_t d = rank_; d < langs_[li].shards->num_documents(); d += world_)
        c.perm.push_back(d);
    // Fisher-Yates with a counter-based stream keyed by (seed, language, epoch).
    uint64_t key = rng_key(seed_ ^ splitmix64(static_cast<uint64_t>(c.epoch)), langs_[li].code);
    for (size_t i = c.perm.size(); i > 1; --i) {
        size_t j = static_cast<size_t>(rng_uniform(key, i) * static_cast<double>(i));
        std::swap(c.perm[i - 1], c.perm[std::min(j, i - 1)]);
    }
}

int BatchLoader::pick(uint64_t row) {
    std::vector<double> q = p_;
    double total = 0;
    for (size_t i = 0; i < q.size(); ++i) {
        if (mix_.max_epochs > 0 && static_cast<double>(cur_[i].epoch) >= mix_.max_epochs) q[i] = 0;
        total += q[i];
    }
    if (total <= 0)
        fail("data",
             "loader: every language has used its {} epochs; expected more data or a "
             "higher cap",
             mix_.max_epochs);
    double u = rng_uniform(rng_key(seed_ + static_cast<uint64_t>(rank_), "rows"), row) * total;
    int last = 0;
    for (size_t i = 0; i < q.size(); ++i) {
        if (q[i] <= 0) continue;
        last = static_cast<int>(i);
        if (u < q[i]) return last;
        u -= q[i];
    }
    return last;
}

void BatchLoader::fill_row(int li, int32_t* row) {
    Cursor& c = cur_[li];
    const ShardSet& s = *langs_[li].shards;
    int64_t filled = 0;
    while (filled < S_) {
        auto doc = s.document(c.perm[static_cast<size_t>(c.pos)]);
        const int64_t len = static_cast<int64_t>(doc.size()) + 1;  // + EOS
        int64_t take = std::min(S_ - filled, len - c.offset);
        for (int64_t t = 0; t < take; ++t) {
            int64_t k = c.offset + t;
            row[filled + t] =
                k < static_cast<int64_t>(doc.size()) ? static_cast<int32_t>(doc[k]) : eos_;
        }
        filled += take;
        c.offset += take;
        if (c.offset == len) {
            c.offset = 0;
            if (++c.pos == static_cast<int64_t>(c.perm.size())) {
                c.pos = 0;
                ++c.epoch;
                build_perm(li);
            }
        }
    }
    c.delivered += S_;
}

void BatchLoader::next(std::span<int32_t> out, std::vector<int>* row_lang) {
    if (static_cast<int64_t>(out.size()) != B_ * S_)
        fail("data", "loader: expected an output of {}x{} tokens, found {}", B_, S_, out.size());
    if (row_lang) row_lang->assign(static_cast<size_t>(B_), 0);
    for (int64_t b = 0; b < B_; ++b) {
        int li = pick(rows_++);
        fill_row(li, out.data() + b * S_);
        if (row_lang) (*row_lang)[static_cast<size_t>(b)] = li;
    }
}

std::vector<int64_t> BatchLoader::delivered() const {
    std::vector<int64_t> d;
    for (const auto& c : cur_)
        d.push_back(c.delivered);
    return d;
}

nlohmann::json BatchLoader::state() const {
    nlohmann::json langs = nlohmann::json::object();
    for (size_t i = 0; i < langs_.size(); ++i)
        langs[langs_[i].code] = {{"epoch", cur_[i].epoch},
                                 {"pos", cur_[i].pos},
                                 {"offset", cur_[i].offset},
                                 {"delivered", cur_[i].delivered}};
    return {{"rows", rows_}, {"seed", seed_}, {"rank", rank_},     {"world", world_},
            {"batch", B_},   {"seq", S_},     {"languages", langs}};
}

void BatchLoader::restore(const nlohmann::json& st) {
    try {
        if (st.at("seed").get<uint64_t>() != seed_ || st.at("rank").get<int>() != rank_ ||
            st.at("world").get<int>() != world_ || st.at("seq").get<int64_t>() != S_)
            fail("data",
                 "loader state: expected seed {}, rank {} of {}, seq {}; found seed {}, "
                 "rank {} of {}, seq {}",
                 seed_, rank_, world_, S_, st.at("seed").dump(), st.at("rank").dump(),
                 st.at("world").dump(), st.at("seq").dump());
        for (size_t i = 0; i < langs_.size(); ++i) {
            const auto& j = st.at("languages").at(langs_[i].code);
            Cursor& c = cur_[i];
            c.epoch = j.at("epoch");
            build_perm(static_cast<int>(i));
            c.pos = j.at("pos");
            c.offset = j.at("offset");
            c.delivered = j.at("delivered");
            if (c.pos < 0 || c.pos >= static_cast<int64_t>(c.perm.size()))
                fail("data", "loader state: language {}: expected a position below {}, found {}",
                     langs_[i].code, c.perm.size(), c.pos);
        }
        rows_ = st.at("rows");
    } catch (const nlohmann::json::exception& e) {
        fail("data", "loader state: expected the saved loader fields, found an error: {}",
             e.what());
    }
}

}  // namespace polymoe::data
