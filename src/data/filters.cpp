// Gopher repetition rules and duplicate hashing (see filters.h).
#include "data/filters.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace polymoe::data {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

}  // namespace

std::pair<uint64_t, uint64_t> text_hash(std::string_view text) {
    uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL;
    for (unsigned char c : text) {
        a = (a ^ c) * 0x100000001b3ULL;
        b = (b ^ c) * 0x00000100000001b3ULL + 0x9e3779b97f4a7c15ULL;
    }
    return {mix(a ^ text.size()), mix(b + text.size())};
}

const char* repetition_violation(std::string_view text) {
    // Lines.
    {
        std::unordered_set<std::string_view> seen;
        int64_t lines = 0, dup_lines = 0, chars = 0, dup_chars = 0;
        size_t b = 0;
        while (b <= text.size()) {
            size_t e = text.find('\n', b);
            if (e == std::string_view::npos) e = text.size();
            std::string_view line = text.substr(b, e - b);
            if (!line.empty()) {
                ++lines;
                chars += static_cast<int64_t>(line.size());
                if (!seen.insert(line).second) {
                    ++dup_lines;
                    dup_chars += static_cast<int64_t>(line.size());
                }
            }
            b = e + 1;
        }
        if (lines > 0 && dup_lines > 0.30 * static_cast<double>(lines)) return "dup_line_frac";
        if (chars > 0 && dup_chars > 0.20 * static_cast<double>(chars)) return "dup_line_char_frac";
    }
    // Words, as hashes and lengths.
    std::vector<uint64_t> wh;
    std::vector<int64_t> wl;
    for (size_t i = 0; i < text.size();) {
        while (i < text.size() && is_space(text[i]))
            ++i;
        size_t s = i;
        while (i < text.size() && !is_space(text[i]))
            ++i;
        if (i > s) {
            wh.push_back(text_hash(text.substr(s, i - s)).first);
            wl.push_back(static_cast<int64_t>(i - s));
        }
    }
    const size_t nw = wh.size();
    int64_t total = 0;
    for (int64_t l : wl)
        total += l;
    if (total == 0) return nullptr;
    auto gram = [&](size_t i, size_t n) {
        uint64_t h = 0x9e3779b97f4a7c15ULL * n;
        for (size_t j = 0; j < n; ++j)
            h = mix(h ^ wh[i + j]) + j;
        return h;
    };
    static constexpr double kTop[] = {0.20, 0.18, 0.16};
    for (size_t n = 2; n <= 4; ++n) {
        if (nw < n) break;
        std::unordered_map<uint64_t, std::pair<int64_t, size_t>> count;  // hash -> (count, first)
        for (size_t i = 0; i + n <= nw; ++i) {
            auto [it, fresh] = count.try_emplace(gram(i, n), 0, i);
            it->second.first++;
        }
        int64_t best = 0;
        for (const auto& [h, cf] : count) {
            if (cf.first < 2) continue;
            int64_t len = 0;
            for (size_t j = 0; j < n; ++j)
                len += wl[cf.second + j];
            best = std::max(best, len * cf.first);
        }
        if (best > kTop[n - 2] * static_cast<double>(total)) return "top_ngram_char_frac";
    }
    static constexpr double kDup[] = {0.15, 0.14, 0.13, 0.12, 0.11, 0.10};
    for (size_t n = 5; n <= 10; ++n) {
        if (nw < n) break;
        std::unordered_map<uint64_t, int64_t> count;
        for (size_t i = 0; i + n <= nw; ++i)
            count[gram(i, n)]++;
        std::vector<char> covered(nw, 0);
        for (size_t i = 0; i + n <= nw; ++i)
            if (count[gram(i, n)] > 1) std::fill(covered.begin() + i, covered.begin() + i + n, 1);
        int64_t dup = 0;
        for (size_t i = 0; i < nw; ++i)
            if (covered[i]) dup += wl[i];
        if (dup > kDup[n - 5] * static_cast<double>(total)) return "dup_ngram_char_frac";
    }
    return nullptr;
}

}  // namespace polymoe::data
