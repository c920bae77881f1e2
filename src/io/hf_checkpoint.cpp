// Hugging Face checkpoint directories (see hf_checkpoint.h). Reading cross-checks the shard index
// against the shards in both directions; writing builds the whole directory under
// "<dir>.tmp-<pid>", fsyncs every file and the directory, and only then renames it into place
// (replacing an old checkpoint by renaming it away first and deleting it last).
#include "io/hf_checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <set>
#include <system_error>

#include "core/check.h"
#include "core/error.h"
#include "core/fault.h"
#include "io/file_util.h"

namespace polymoe::io {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
constexpr std::string_view kComponent = "hf_checkpoint";
constexpr const char* kConfigName = "config.json";
constexpr const char* kGenerationConfigName = "generation_config.json";
constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";

std::string join(const std::string& dir, const std::string& name) {
    return (fs::path(dir) / name).string();
}

bool path_exists(const std::string& path) {
    std::error_code ec;
    return fs::symlink_status(path, ec).type() != fs::file_type::not_found;
}

json read_json_object(const std::string& path) {
    std::string text = detail::read_file(path, kComponent);
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        fail(kComponent, "{}: expected valid JSON, found {}", path, e.what());
    }
    if (!j.is_object())
        fail(kComponent, "{}: expected a JSON object, found a JSON {}", path, j.type_name());
    return j;
}

std::string dump_json(const json& j, const std::string& what) {
    try {
        return j.dump(2) + "\n";  // as transformers: json.dumps(indent=2, sort_keys=True) + "\n"
    } catch (const json::exception& e) {
        fail(kComponent, "{}: expected valid UTF-8 JSON, found {}", what, e.what());
    }
}

// The weight_map of an index file, checked to map names to plain file names.
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
    json index = read_json_object(index_path);
    auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object())
        fail(kComponent,
             "{}: weight_map: expected an object mapping tensor names to shard files, "
             "found {}",
             index_path, wm == index.end() ? "nothing" : "a JSON " + std::string(wm->type_name()));
    std::map<std::string, std::string> out;
    for (const auto& [name, file] : wm->items()) {
        if (!file.is_string() || file.get<std::string>().empty() ||
            file.get<std::string>().find('/') != std::string::npos || file == "." || file == "..")
            fail(kComponent,
                 "{}: weight_map['{}']: expected a file name inside the checkpoint "
                 "directory, found {}",
                 index_path, name, file.dump());
        out[name] = file.get<std::string>();
    }
    return out;
}

// Greedy contiguous split of tensors (in order) into `num_shards` non-empty groups balanced by
// bytes: shard s ends once the cumulative size reaches (s + 1) * total / num_shards, and a new
// shard is also started whenever the remaining tensors are just enough to fill the remaining
// shards. Returns the shard of each tensor.
std::vector<int> split_by_bytes(const std::vector<int64_t>& bytes, int num_shards) {
    using u128 = unsigned __int128;
    u128 total = 0;
    for (int64_t b : bytes)
        total += static_cast<u128>(b);
    std::vector<int> shard_of(bytes.size());
    int shard = 0;
    bool shard_empty = true;
    u128 cum = 0;  // bytes placed so far
    const size_t n = bytes.size();
    for (size_t i = 0; i < n; ++i) {
        if (!shard_empty && shard < num_shards - 1) {
            bool balanced = cum * static_cast<u128>(num_shards) >= (shard + 1) * total;
            bool needed = n - i <= static_cast<size_t>(num_shards - 1 - shard);
            if (balanced || needed) {
                ++shard;
                shard_empty = true;
            }
        }
        shard_of[i] = shard;
        shard_empty = false;
        cum += static_cast<u128>(bytes[i]);
    }
    POLYMOE_CHECK(n == 0 || shard == num_shards - 1,
                  "split_by_bytes: {} tensors over {} shards "
                  "ended at shard {}",
                  n, num_shards, shard);
    return shard_of;
}

std::string shard_file_name(int i, int num_shards) {
    if (num_shards == 1) return kSingleName;
    return fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, num_shards);
}

// Moves the finished temporary directory to `out`; an existing `out` is renamed away first and
// deleted only once the new one is in place (restored if that rename fails).
void install(const std::string& tmp, const std::string& out, bool replace) {
    if (!replace) {
        if (::rename(tmp.c_str(), out.c_str()) != 0)
            fail(kComponent, "{}: cannot rename {} to it: {}", out, tmp,
                 detail::errno_message(errno));
        return;
    }
    const std::string old = out + ".old-" + std::to_string(::getpid());
    std::error_code ec;
    fs::remove_all(old, ec);
    if (::rename(out.c_str(), old.c_str()) != 0)
        fail(kComponent, "{}: cannot move the existing checkpoint to {}: {}", out, old,
             detail::errno_message(errno));
    fault_point("checkpoint", "existing checkpoint moved away, new one not yet renamed");
    if (::rename(tmp.c_str(), out.c_str()) != 0) {
        int err = errno;
        ::rename(old.c_str(), out.c_str());
        fail(kComponent, "{}: cannot rename {} to it: {}", out, tmp, detail::errno_message(err));
    }
    // The new checkpoint is complete and in place; a failure to delete the old one leaves only
    // a stale "<dir>.old-<pid>" behind, not an error worth failing the write for.
    fs::remove_all(old, ec);
}

}  // namespace

HfCheckpoint HfCheckpoint::open(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        fail(kComponent, "{}: expected a checkpoint directory, found {}", dir,
             path_exists(dir) ? "something else" : "no such directory");
    HfCheckpoint ck;
    ck.dir_ = dir;
    ck.config_ = read_json_object(join(dir, kConfigName));
    if (path_exists(join(dir, kGenerationConfigName)))
        ck.generation_config_ = read_json_object(join(dir, kGenerationConfigName));

    const std::string index_path = join(dir, kIndexName);
    if (path_exists(index_path)) {
        const std::map<std::string, std::string> weight_map = read_weight_map(index_path);
        // Distinct shard files, in name order, each with one tensor that names it (for messages).
        std::map<std::string, std::string> files;
        for (const auto& [name, file] : weight_map)
            files.emplace(file, name);
        std::map<std::string, size_t> shard_index;
        ck.shards_.reserve(files.size());
        for (const auto& [file, some_tensor] : files) {
            const std::string path = join(dir, file);
            if (!path_exists(path))
                fail(kComponent,
                     "{}: expected the shard named in {} (for tensor '{}'), found no "
                     "such file",
                     path, kIndexName, some_tensor);
            shard_index[file] = ck.shards_.size();
            ck.shards_.push_back(SafetensorsFile::open(path));
        }
        for (const auto& [name, file] : weight_map) {
            size_t i = shard_index.at(file);
            const TensorInfo* t = ck.shards_[i].find(name);
            if (t == nullptr)
                fail(kComponent, "{}: expected in {} (as {} says), found absent from that shard",
                     name, ck.shards_[i].path(), kIndexName);
            ck.where_[name] = {i, t};
        }
        for (size_t i = 0; i < ck.shards_.size(); ++i) {
            const std::string& path = ck.shards_[i].path();
            for (const TensorInfo& t : ck.shards_[i].tensors()) {
                auto it = weight_map.find(t.name);
                if (it == weight_map.end())
                    fail(kComponent, "{}: expected listed in {}, found unlisted in {}", t.name,
                         index_path, path);
                if (join(dir, it->second) != path)
                    fail(kComponent, "{}: expected only in {} (as {} says), found also in {}",
                         t.name, it->second, kIndexName, path);
            }
        }
    } else if (path_exists(join(dir, kSingleName))) {
        ck.shards_.push_back(SafetensorsFile::open(join(dir, kSingleName)));
        for (const TensorInfo& t : ck.shards_[0].tensors())
            ck.where_[t.name] = {0, &t};
    } else {
        fail(kComponent, "{}: weights: expected {} or {} (sharded), found neither", dir,
             kSingleName, kIndexName);
    }
    return ck;
}

std::vector<std::string> HfCheckpoint::tensor_names() const {
    std::vector<std::string> names;
    names.reserve(where_.size());
    for (const auto& [name, where] : where_)
        names.push_back(name);
    return names;
}

const TensorInfo* HfCheckpoint::find(const std::string& name, const SafetensorsFile** file) const {
    auto it = where_.find(name);
    if (it == where_.end()) {
        if (file != nullptr) *file = nullptr;
        return nullptr;
    }
    if (file != nullptr) *file = &shards_[it->second.first];
    return it->second.second;
}

void write_hf_checkpoint(const std::string& dir,
                         const nlohmann::json& config,
                         const nlohmann::json& generation_config,
                         const std::vector<TensorToWrite>& tensors,
                         int num_shards,
                         bool overwrite,
                         const std::function<void(const std::string&)>& extra) {
    fs::path target(dir);
    if (!target.has_filename()) target = target.parent_path();  // "out/ckpt/" -> "out/ckpt"
    const std::string out = target.string();
    if (out.empty()) fail(kComponent, "checkpoint directory: expected a path, found '{}'", dir);
    if (!config.is_object())
        fail(kComponent, "{}: config: expected a JSON object, found a JSON {}", out,
             config.type_name());
    const size_t max_shards = std::max<size_t>(1, tensors.size());
    if (num_shards < 1 || static_cast<size_t>(num_shards) > max_shards)
        fail(kComponent,
             "{}: number of shards: expected 1 to {} (at least one tensor per "
             "shard), found {}",
             out, max_shards, num_shards);
    const bool replace = path_exists(out);
    if (replace && !overwrite)
        fail(kComponent,
             "{}: expected a directory that does not exist yet, found an existing one "
             "(overwrite it explicitly)",
             out);

    std::set<std::string_view> names;
    std::vector<int64_t> bytes;
    int64_t total = 0;
    for (const TensorToWrite& t : tensors) {
        if (!names.insert(t.name).second)
            fail(kComponent, "{}: tensor '{}': expected a unique name, found it twice", out,
                 t.name);
        int64_t n = dtype_size(t.dtype);
        for (int64_t d : t.shape) {
            if (d < 0 || __builtin_mul_overflow(n, d, &n))
                fail(kComponent,
                     "{}: tensor '{}': shape: expected non-negative dimensions with "
                     "a byte size below 2^63, found {}",
                     out, t.name, shape_str(t.shape));
        }
        if (n > 0 && t.data == nullptr && !t.produce)
            fail(kComponent, "{}: tensor '{}': data: expected a pointer to {} bytes, found null",
                 out, t.name, n);
        if (__builtin_add_overflow(total, n, &total))
            fail(kComponent, "{}: total size: expected below 2^63 bytes, found an overflow", out);
        bytes.push_back(n);
    }
    const std::vector<int> shard_of = split_by_bytes(bytes, num_shards);

    std::error_code ec;
    const std::string parent = target.has_parent_path() ? target.parent_path().string() : ".";
    fs::create_directories(parent, ec);
    if (ec) fail(kComponent, "{}: cannot create directory: {}", parent, ec.message());
    const std::string tmp = out + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp, ec);  // left over by a crashed earlier run that had our pid
    if (!fs::create_directory(tmp, ec))
        fail(kComponent, "{}: cannot create directory: {}", tmp,
             ec ? ec.message() : std::string("it already exists"));
    try {
        fault_point("checkpoint", "temporary directory created");
        detail::write_file_synced(join(tmp, kConfigName), dump_json(config, kConfigName),
                                  kComponent);
        fault_point("checkpoint", "config.json written");
        if (!generation_config.is_null()) {
            detail::write_file_synced(join(tmp, kGenerationConfigName),
                                      dump_json(generation_config, kGenerationConfigName),
                                      kComponent);
            fault_point("checkpoint", "generation_config.json written");
        }
        json weight_map = json::object();
        for (int s = 0; s < num_shards; ++s) {
            const std::string file = shard_file_name(s, num_shards);
            std::vector<TensorToWrite> part;
            for (size_t i = 0; i < tensors.size(); ++i) {
                if (shard_of[i] != s) continue;
                part.push_back(tensors[i]);
                weight_map[tensors[i].name] = file;
            }
            write_safetensors(join(tmp, file), part);
            fault_point("checkpoint", "weights file written");
        }
        if (num_shards > 1) {
            json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
            detail::write_file_synced(join(tmp, kIndexName), dump_json(index, kIndexName),
                                      kComponent);
        }
        if (extra) extra(tmp);
        detail::fsync_dir(tmp, kComponent);
        fault_point("checkpoint", "temporary directory complete and fsynced");
        install(tmp, out, replace);
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
    fault_point("checkpoint", "renamed into place, parent not yet fsynced");
    detail::fsync_dir(parent, kComponent);
}

void write_checkpoint_file(const std::string& path, std::string_view text) {
    detail::write_file_synced(path, text, kComponent);
}

}  // namespace polymoe::io
