// data_dir_test.cpp — specifies DataDir (broker/server/data_dir.hpp): it
// creates the directory, holds an exclusive lock on it for its lifetime (a
// second DataDir, in this process or another, fails with a message naming
// the directory and the holder), maps the log whole, and cuts a torn
// tail so that later appends follow the last good record.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <utility>

#include "data_dir.hpp"
#include "log_test_support.hpp"
#include "storage_dir_support.hpp"

namespace {

using namespace memq_storage_test;
using memq::DataDir;
using memq::DataDirError;

// The message a failing DataDir gives, or nothing if it opened.
std::optional<DataDirError> open_error(const std::string& path) {
    try {
        DataDir dir(path);
    } catch (const DataDirError& error) {
        return error;
    }
    return std::nullopt;
}

TEST(DataDir, creates_a_missing_directory_and_its_parents) {
    ScratchDir scratch;
    const std::string path = scratch.path() + "/a/b";
    DataDir dir(path);
    EXPECT_TRUE(std::filesystem::is_directory(path));
    EXPECT_EQ(dir.log_path(), path + "/memq.log");
}

TEST(DataDir, the_lock_file_names_the_holding_process) {
    ScratchDir scratch;
    DataDir dir(scratch.path());
    EXPECT_EQ(read_file(scratch.path() + "/lock"), std::to_string(::getpid()) + "\n");
}

TEST(DataDir, a_second_data_dir_on_the_same_directory_fails_with_a_clear_message) {
    ScratchDir scratch;
    DataDir first(scratch.path());
    const std::optional<DataDirError> error = open_error(scratch.path());
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), DataDirError::Kind::locked);
    EXPECT_EQ(std::string(error->what()), "data dir " + scratch.path() + " is in use by another memqd (pid " +
                                              std::to_string(::getpid()) + " holds " + scratch.path() + "/lock)");
}

TEST(DataDir, the_lock_is_released_with_the_data_dir) {
    ScratchDir scratch;
    { DataDir first(scratch.path()); }
    EXPECT_FALSE(open_error(scratch.path()).has_value());
}

TEST(DataDir, another_process_holding_the_directory_keeps_this_one_out_until_it_exits) {
    ScratchDir scratch;
    int locked[2], release[2];
    ASSERT_EQ(::pipe(locked), 0);
    ASSERT_EQ(::pipe(release), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // The child: take the lock, say so, hold it until told to exit (the
        // parent closing its end of `release`).
        ::close(locked[0]);
        ::close(release[1]);
        int status = 0;
        try {
            DataDir held(scratch.path());
            char byte = 'L';
            if (::write(locked[1], &byte, 1) != 1) status = 3;
            if (::read(release[0], &byte, 1) < 0) status = 4;
        } catch (...) {
            status = 2;
        }
        ::_exit(status);
    }
    ::close(locked[1]);
    ::close(release[0]);
    char byte = 0;
    ASSERT_EQ(::read(locked[0], &byte, 1), 1) << "the child took the lock";
    const std::optional<DataDirError> error = open_error(scratch.path());
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->kind(), DataDirError::Kind::locked);
    EXPECT_NE(std::string(error->what()).find("pid " + std::to_string(child)), std::string::npos) << error->what();
    ::close(release[1]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ::close(locked[0]);
    EXPECT_FALSE(open_error(scratch.path()).has_value()) << "the child's exit released it";
}

TEST(DataDir, a_directory_without_a_log_maps_as_empty) {
    ScratchDir scratch;
    DataDir dir(scratch.path());
    EXPECT_EQ(dir.map_log().bytes(), "");
}

TEST(DataDir, an_empty_log_maps_as_empty) {
    ScratchDir scratch;
    DataDir dir(scratch.path());
    write_file(dir.log_path(), "");
    EXPECT_EQ(dir.map_log().bytes(), "");
}

TEST(DataDir, maps_the_whole_log) {
    ScratchDir scratch;
    DataDir dir(scratch.path());
    const std::string contents = sample_log().bytes + std::string(200000, 'x');
    write_file(dir.log_path(), contents);
    EXPECT_EQ(dir.map_log().bytes(), contents);
}

TEST(DataDir, a_moved_mapping_keeps_the_bytes_and_leaves_its_source_empty) {
    ScratchDir scratch;
    DataDir dir(scratch.path());
    const std::string contents = sample_log().bytes;
    write_file(dir.log_path(), contents);
    memq::MappedLog source = dir.map_log();
    const memq::MappedLog moved = std::move(source);
    EXPECT_EQ(moved.bytes(), contents);
    EXPECT_EQ(source.bytes(), "");  // NOLINT(bugprone-use-after-move): specified empty
}

TEST(DataDir, cutting_a_torn_tail_leaves_the_good_prefix) {
    ScratchDir scratch;
    DataDir dir(scratch.path());
    const SampleLog log = sample_log();
    write_file(dir.log_path(), log.bytes + "torn");
    const Collected before = scan(read_file(dir.log_path()));
    ASSERT_EQ(before.result.damage, memq::storage::Damage::torn_tail);
    dir.cut_log(before.result.good_bytes);
    EXPECT_EQ(read_file(dir.log_path()), log.bytes);
    EXPECT_EQ(scan(read_file(dir.log_path())).result.damage, memq::storage::Damage::none);
}

TEST(DataDir, cutting_a_missing_log_is_an_io_error_naming_it) {
    ScratchDir scratch;
    DataDir dir(scratch.path());
    try {
        dir.cut_log(0);
        FAIL() << "no error";
    } catch (const DataDirError& error) {
        EXPECT_EQ(error.kind(), DataDirError::Kind::io);
        EXPECT_NE(std::string(error.what()).find(dir.log_path()), std::string::npos) << error.what();
    }
}

}  // namespace
