// Flat YAML stage configs (see stage_config.h).
#include "data/stage_config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "core/error.h"
#include "data/yaml_file.h"

namespace polymoe::data {

namespace {

std::vector<ConfigEntry> entries(const std::string& path, const YAML::Node& root) {
    if (!root.IsMap())
        fail("config",
             "{}: expected a mapping of option names to values, found another YAML "
             "node",
             path);
    std::vector<ConfigEntry> out;
    std::set<std::string> seen;
    for (auto it = root.begin(); it != root.end(); ++it) {
        const YAML::Node k = it->first, v = it->second;
        ConfigEntry e;
        e.key = k.as<std::string>();
        e.line = k.Mark().line + 1;
        if (!seen.insert(e.key).second)
            fail("config", "{}:{}: duplicate key \"{}\"", path, e.line, e.key);
        if (v.IsScalar()) {
            e.values.push_back(v.Scalar());
        } else if (v.IsSequence()) {
            for (const auto& x : v) {
                if (!x.IsScalar())
                    fail("config",
                         "{}:{}: {}: expected a list of plain values, found a nested "
                         "node",
                         path, x.Mark().line + 1, e.key);
                e.values.push_back(x.Scalar());
            }
        } else {
            fail("config", "{}:{}: {}: expected a value or a list, found {}", path, e.line, e.key,
                 v.IsMap() ? "a mapping" : "nothing");
        }
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace

std::vector<ConfigEntry> load_stage_config(const std::string& path) {
    if (std::error_code ec; !std::filesystem::is_regular_file(path, ec))
        fail("config", "{}: expected a YAML stage config, found no such file", path);
    check_yaml_size(path, "config");
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::Exception& e) {
        fail("config", "{}:{}: expected valid YAML, found a syntax error: {}", path,
             e.mark.line + 1, e.msg);
    }
    try {
        return entries(path, root);
    } catch (const YAML::Exception& e) {
        // For instance a key that is itself a list or a mapping, which has no string value.
        fail("config", "{}:{}: expected option names and plain values, found an error: {}", path,
             e.mark.line + 1, e.msg);
    }
}

}  // namespace polymoe::data
