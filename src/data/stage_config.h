// Stage configs (`polymoe train --config stage.yaml`): a flat YAML mapping whose keys are train's
// long option names without "--" and whose values are what the command line would take, e.g.
//
//   data: ../prepared      # paths are relative to this file
//   stage: "1"
//   replay-stages: base
//   replay: 0.1
//   mixture: temperature
//   temperature: 3
//   steps: 200
//   lr: 1.0e-3
//
// Lists (for repeatable options such as no-decay) are YAML sequences. The command line wins over
// the file. Parsing lives here (data owns YAML); the CLI checks the keys against its options.
#pragma once

#include <string>
#include <vector>

namespace polymoe::data {

struct ConfigEntry {
    std::string key;
    std::vector<std::string> values;  // one for scalars, several for a list
    int line = 0;                     // 1-based
};

// Throws polymoe::Error "[config] FILE:LINE: ..." for non-mapping files, nested mappings and
// duplicate keys.
std::vector<ConfigEntry> load_stage_config(const std::string& path);

}  // namespace polymoe::data
