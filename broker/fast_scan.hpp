// fast_scan.hpp — the hot-path reader of command lines (internal to memq_protocol).
//
// Rules: it reads only the common shape — one flat JSON object whose keys are
// known field names and whose values are strings (simple escapes only),
// integers within int64, or booleans — and fills CommandFields exactly as the
// nlohmann SAX path would. For anything else (an error of any kind, nesting,
// null, floats, \u escapes, unknown keys) it declines, and the caller runs
// the full parser, which stays the reference for every reply. It never
// accepts a line nlohmann would reject.
#pragma once

#include <string_view>

#include "command_fields.hpp"

namespace memq::detail {

// Precondition: `line` is valid UTF-8. Returns false to decline; `fields`
// is then unspecified and must be reset before the full parser runs.
bool fast_scan_command(std::string_view line, CommandFields& fields);

}  // namespace memq::detail
