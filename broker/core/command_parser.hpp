// command_parser.hpp — the broker's reading of one command line into a
// command or an error, in PROTOCOL.md's order: strict UTF-8, strict JSON, then
// the three templates. The broker decides what a valid command *does*; this
// file decides only what it *is*.
//
// Rules: pure, no IO. The fast scanner (command_scan) may make a line faster
// to read, never read differently: parse_line_reference (nlohmann alone) is
// what every other path must agree with, and tests and fuzzers compare them.
#pragma once

#include <string_view>

#include "command_scan.hpp"
#include "protocol.hpp"

namespace memq {

// Parses lines as parse_line does, into views, reusing its buffers from line
// to line: the common shape of command (one flat object, keys unescaped)
// takes one pass over the bytes and allocates nothing; everything else goes to
// nlohmann, which decides.
class LineParser {
public:
    ParseRefResult parse(std::string_view line);

private:
    ParseRefResult parse_slow(std::string_view line);

    detail::CommandRefFields fields_;
    detail::CommandScratch scratch_;
};

// Parses one already-trimmed, non-empty line (no '\n' inside). The common
// shape of command takes a fast scanner; everything else goes to nlohmann.
ParseResult parse_line(std::string_view line);
// The same through nlohmann alone: the reference parse_line must agree with
// on every input (tests and fuzzers compare the two).
ParseResult parse_line_reference(std::string_view line);

}  // namespace memq
