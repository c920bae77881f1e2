// Flat YAML stage configs (see stage_config.h).
#include "data/stage_config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "core/error.h"

namespace polymoe::data {

std::vector<ConfigEntry> load_stage_config(const std::string& path) {
    if (!std::filesystem::is_regular_file(path))
        fail("config", "{}: expected a YAML stage config, found no such file", path);
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::Exception& e) {
        fail("config", "{}:{}: expected valid YAML, found a syntax error: {}", path,
             e.mark.line + 1, e.msg);
    }
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

}  // namespace polymoe::data
