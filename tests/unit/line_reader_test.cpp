// line_reader_test.cpp — specifies memq::LineReader (protocol.hpp): a byte
// stream split into lines at '\n' whatever the segment boundaries, a line of
// at most line_bytes_max bytes (not counting its '\n'), and a reader that is
// spent once its consumer stops or a line is too long.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "protocol.hpp"

namespace {

using memq::LineReader;
using Status = LineReader::Status;

// Feeds `segments` in order, collecting every line; returns the last status.
struct Collected {
    std::vector<std::string> lines;
    std::vector<Status> statuses;
};

Collected feed_all(LineReader& reader, const std::vector<std::string>& segments) {
    Collected out;
    for (const std::string& segment : segments) {
        out.statuses.push_back(reader.feed(segment, [&](std::string_view line) {
            out.lines.emplace_back(line);
            return true;
        }));
    }
    return out;
}

std::vector<std::string> lines_of(std::size_t limit, const std::vector<std::string>& segments) {
    LineReader reader(limit);
    return feed_all(reader, segments).lines;
}

TEST(LineReader, one_segment_with_one_line_gives_the_line_without_its_newline) {
    LineReader reader(100);
    const Collected out = feed_all(reader, {"hello\n"});
    EXPECT_EQ(out.lines, (std::vector<std::string>{"hello"}));
    EXPECT_EQ(out.statuses.back(), Status::more);
    EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(LineReader, pipelined_lines_in_one_segment_come_out_in_order) {
    EXPECT_EQ(lines_of(100, {"a\nbb\nccc\n"}), (std::vector<std::string>{"a", "bb", "ccc"}));
}

TEST(LineReader, an_unfinished_line_is_held_until_its_newline_arrives) {
    LineReader reader(100);
    Collected out = feed_all(reader, {"abc"});
    EXPECT_TRUE(out.lines.empty());
    EXPECT_EQ(out.statuses.back(), Status::more);
    EXPECT_EQ(reader.buffered_bytes(), 3u);
    out = feed_all(reader, {"def\n"});
    EXPECT_EQ(out.lines, (std::vector<std::string>{"abcdef"}));
    EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(LineReader, carriage_returns_and_whitespace_are_passed_through_untouched) {
    EXPECT_EQ(lines_of(100, {" a \r\n\tb\r\n"}), (std::vector<std::string>{" a \r", "\tb\r"}));
}

TEST(LineReader, empty_lines_are_reported_as_empty) {
    EXPECT_EQ(lines_of(100, {"\n\nx\n"}), (std::vector<std::string>{"", "", "x"}));
}

TEST(LineReader, every_split_point_gives_the_same_lines) {
    const std::string stream = "first line\nsecond\n\nthird one here\r\nlast\n";
    const std::vector<std::string> expected = lines_of(100, {stream});
    ASSERT_EQ(expected.size(), 5u);
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        EXPECT_EQ(lines_of(100, {stream.substr(0, cut), stream.substr(cut)}), expected) << "cut at " << cut;
    }
}

TEST(LineReader, every_pair_of_split_points_gives_the_same_lines) {
    const std::string stream = "ab\ncd\n\nefg\n";
    const std::vector<std::string> expected = {"ab", "cd", "", "efg"};
    for (std::size_t first = 0; first <= stream.size(); ++first) {
        for (std::size_t second = first; second <= stream.size(); ++second) {
            const std::vector<std::string> segments = {stream.substr(0, first), stream.substr(first, second - first),
                                                       stream.substr(second)};
            EXPECT_EQ(lines_of(100, segments), expected) << "cuts at " << first << ", " << second;
        }
    }
}

TEST(LineReader, byte_by_byte_gives_the_same_lines) {
    const std::string stream = "one\ntwo\r\n\nthree\n";
    std::vector<std::string> segments;
    for (const char byte : stream) segments.emplace_back(1, byte);
    EXPECT_EQ(lines_of(100, segments), (std::vector<std::string>{"one", "two\r", "", "three"}));
}

TEST(LineReader, empty_segments_change_nothing) {
    EXPECT_EQ(lines_of(100, {"", "ab", "", "c\n", ""}), (std::vector<std::string>{"abc"}));
}

TEST(LineReader, a_line_of_exactly_the_limit_is_accepted) {
    const std::string line(16, 'x');
    LineReader reader(16);
    const Collected out = feed_all(reader, {line + "\n"});
    EXPECT_EQ(out.lines, (std::vector<std::string>{line}));
    EXPECT_EQ(out.statuses.back(), Status::more);
}

TEST(LineReader, a_line_of_exactly_the_limit_is_accepted_when_split) {
    const std::string line(16, 'x');
    LineReader reader(16);
    const Collected out = feed_all(reader, {line.substr(0, 5), line.substr(5), "\n"});
    EXPECT_EQ(out.lines, (std::vector<std::string>{line}));
    EXPECT_EQ(out.statuses, (std::vector<Status>{Status::more, Status::more, Status::more}));
}

TEST(LineReader, a_line_one_byte_over_the_limit_is_too_long_with_its_newline) {
    LineReader reader(16);
    const Collected out = feed_all(reader, {std::string(17, 'x') + "\n"});
    EXPECT_TRUE(out.lines.empty());
    EXPECT_EQ(out.statuses.back(), Status::too_long);
}

TEST(LineReader, a_line_one_byte_over_the_limit_is_too_long_before_its_newline_arrives) {
    LineReader reader(16);
    const Collected out = feed_all(reader, {std::string(17, 'x')});
    EXPECT_TRUE(out.lines.empty());
    EXPECT_EQ(out.statuses.back(), Status::too_long);
}

TEST(LineReader, a_line_reaching_the_limit_then_one_more_byte_is_too_long) {
    LineReader reader(16);
    const Collected out = feed_all(reader, {std::string(16, 'x'), "y"});
    EXPECT_TRUE(out.lines.empty());
    EXPECT_EQ(out.statuses, (std::vector<Status>{Status::more, Status::too_long}));
}

TEST(LineReader, the_limit_does_not_count_the_newline) {
    LineReader reader(3);
    const Collected out = feed_all(reader, {"abc\nde\n"});
    EXPECT_EQ(out.lines, (std::vector<std::string>{"abc", "de"}));
    EXPECT_EQ(out.statuses.back(), Status::more);
}

TEST(LineReader, the_limit_applies_to_each_line_not_to_the_segment) {
    // Many short lines in one segment far longer than the limit.
    std::string segment;
    for (int i = 0; i < 100; ++i) segment += "abcd\n";
    LineReader reader(4);
    const Collected out = feed_all(reader, {segment});
    EXPECT_EQ(out.lines.size(), 100u);
    EXPECT_EQ(out.statuses.back(), Status::more);
}

TEST(LineReader, lines_before_a_too_long_line_are_delivered) {
    LineReader reader(4);
    const Collected out = feed_all(reader, {"ok\nabcdefgh\nlater\n"});
    EXPECT_EQ(out.lines, (std::vector<std::string>{"ok"}));
    EXPECT_EQ(out.statuses.back(), Status::too_long);
}

TEST(LineReader, a_too_long_reader_is_spent_and_takes_nothing_more) {
    LineReader reader(4);
    Collected out = feed_all(reader, {"abcdefgh"});
    ASSERT_EQ(out.statuses.back(), Status::too_long);
    EXPECT_EQ(reader.buffered_bytes(), 0u);
    out = feed_all(reader, {"\nok\n"});
    EXPECT_TRUE(out.lines.empty());
    EXPECT_NE(out.statuses.back(), Status::more);
}

TEST(LineReader, stops_when_the_consumer_returns_false_and_drops_the_rest) {
    LineReader reader(100);
    std::vector<std::string> lines;
    const Status status = reader.feed("a\nstop\nb\nc", [&](std::string_view line) {
        lines.emplace_back(line);
        return line != "stop";
    });
    EXPECT_EQ(status, Status::stopped);
    EXPECT_EQ(lines, (std::vector<std::string>{"a", "stop"}));
    EXPECT_EQ(reader.buffered_bytes(), 0u);
}

TEST(LineReader, a_stopped_reader_takes_nothing_more) {
    LineReader reader(100);
    reader.feed("stop\n", [](std::string_view) { return false; });
    const Collected out = feed_all(reader, {"more\nlines\n"});
    EXPECT_TRUE(out.lines.empty());
    EXPECT_EQ(out.statuses.back(), Status::stopped);
}

TEST(LineReader, stopping_on_a_line_assembled_from_several_segments_works) {
    LineReader reader(100);
    std::vector<std::string> lines;
    auto on_line = [&](std::string_view line) {
        lines.emplace_back(line);
        return false;
    };
    EXPECT_EQ(reader.feed("qu", on_line), Status::more);
    EXPECT_EQ(reader.feed("it\nignored\n", on_line), Status::stopped);
    EXPECT_EQ(lines, (std::vector<std::string>{"quit"}));
}

TEST(LineReader, a_limit_of_zero_accepts_only_empty_lines) {
    LineReader reader(0);
    Collected out = feed_all(reader, {"\n\n"});
    EXPECT_EQ(out.lines, (std::vector<std::string>{"", ""}));
    out = feed_all(reader, {"x"});
    EXPECT_EQ(out.statuses.back(), Status::too_long);
}

TEST(LineReader, lines_may_hold_any_bytes_except_newline) {
    const std::string line = std::string("a\0b\xff\r", 5);
    EXPECT_EQ(lines_of(100, {line + "\n"}), (std::vector<std::string>{line}));
}

}  // namespace
