// Tokenizer throughput (MB/s of UTF-8 input) on the UDHR texts of the golden fixture
// (tests/fixtures/tokenizer/cases.jsonl): (a) English, (b) the declarations that are mostly
// non-ASCII (non-Latin scripts), each repeated to about 4 MB of documents and encoded with
// encode_batch on 1 and 2 threads. bench/tokenizer_vs_hf.sh runs this next to the Hugging Face
// reference (tools/bench_tokenizer_reference.js) on the same documents.
#include <benchmark/benchmark.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "tokenizer/tokenizer.h"

namespace {

using polymoe::tokenizer::Tokenizer;

const Tokenizer& olmo() {
    static Tokenizer tok = Tokenizer::from_file(
        std::string(POLYMOE_SOURCE_DIR) + "/data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json");
    return tok;
}

// Documents of one corpus ("english" or "nonlatin"), repeated to >= 4 MB. The same selection
// is coded in tools/bench_tokenizer_reference.js.
const std::vector<std::string>& corpus(const std::string& which) {
    static std::vector<std::string> docs[2];
    std::vector<std::string>& d = docs[which == "english" ? 0 : 1];
    if (!d.empty()) return d;
    std::ifstream f(std::string(POLYMOE_SOURCE_DIR) + "/tests/fixtures/tokenizer/cases.jsonl");
    std::string line;
    std::vector<std::string> base;
    while (std::getline(f, line)) {
        auto j = nlohmann::json::parse(line);
        std::string name = j["name"], text = j["text"];
        if (name.rfind("udhr_", 0) != 0) continue;
        size_t non_ascii = 0;
        for (unsigned char c : text)
            non_ascii += c >= 0x80;
        if (which == "english" ? name == "udhr_eng" : non_ascii * 2 > text.size())
            base.push_back(text);
    }
    size_t bytes = 0;
    while (bytes < (4u << 20))
        for (const auto& t : base) {
            d.push_back(t);
            bytes += t.size();
        }
    return d;
}

void run(benchmark::State& state, const std::string& which) {
    const auto& docs = corpus(which);
    std::vector<std::string_view> views(docs.begin(), docs.end());
    size_t bytes = 0, tokens = 0;
    for (auto v : views)
        bytes += v.size();
    polymoe::set_num_threads(static_cast<int>(state.range(0)));
    for (auto _ : state) {
        auto enc = olmo().encode_batch(views);
        tokens = 0;
        for (const auto& e : enc)
            tokens += e.ids.size();
        benchmark::DoNotOptimize(enc.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(bytes * state.iterations()));
    state.counters["tokens/s"] = benchmark::Counter(
        static_cast<double>(tokens * state.iterations()), benchmark::Counter::kIsRate);
    state.counters["MB"] = static_cast<double>(bytes) / 1e6;
}

void BM_tokenize_english(benchmark::State& s) {
    run(s, "english");
}
void BM_tokenize_nonlatin(benchmark::State& s) {
    run(s, "nonlatin");
}
BENCHMARK(BM_tokenize_english)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_tokenize_nonlatin)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
