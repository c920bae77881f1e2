// Build identification recorded in run.json files and benchmark lines. The commit lives in one
// generated translation unit (version.cpp.in) so that a new commit relinks instead of rebuilding
// every object that would otherwise see it as a compile definition.
#pragma once

namespace polymoe::core {

// Short git commit of the source tree at configure time, or "unknown" outside a git checkout.
const char* git_commit();

}  // namespace polymoe::core
