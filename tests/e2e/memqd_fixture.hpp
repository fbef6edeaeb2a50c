// memqd_fixture.hpp — a GoogleTest fixture: one fresh memqd per test, stopped and checked after it.
//
// Rules: memqd listens on a port of its own choosing; TearDown stops it with
// SIGTERM and expects exit code 0, so every test also checks a clean stop.
// A test's local clients are closed before TearDown runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "memqd_process.hpp"

namespace memq::e2e {

class MemqdTest : public testing::Test {
protected:
    // memqd's arguments besides --port 0 and --port-file; fixtures override.
    virtual std::vector<std::string> memqd_args() const { return {}; }

    void SetUp() override { memqd_.emplace(any_port(memqd_args())); }

    void TearDown() override {
        if (!memqd_) return;
        const ExitStatus status = memqd_->stop();
        EXPECT_TRUE(status.is_clean()) << "memqd " << describe(status) << "; stderr:\n" << memqd_->stderr_text();
    }

    std::uint16_t port() const { return memqd_->port(); }
    MemqdProcess& memqd() { return *memqd_; }

private:
    std::optional<MemqdProcess> memqd_;
};

}  // namespace memq::e2e
