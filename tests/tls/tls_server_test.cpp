// tls_server_test.cpp — memqd's TLS port seen from raw clients: openssl
// s_client, a bare TLS line client, a TCP client that stalls mid-handshake.
// The shell's rules hold over TLS as over TCP: line length, slow consumers,
// quit's flush and close; a handshake is bounded; memqd's start-up refuses
// bad TLS files; without the TLS flags nothing changes.
#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "line_client.hpp"
#include "tls_fixture.hpp"
#include "wire.hpp"

namespace memq::tls_test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using e2e::is_json;
using e2e::kAck;

// Runs a shell command and returns what it printed on stdout.
std::string output_of(const std::string& command) {
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
    std::string output;
    char chunk[4096];
    while (const std::size_t got = std::fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, got);
    ::pclose(pipe);
    return output;
}

bool log_has(const TlsMemqd& memqd, const std::string& text, std::chrono::milliseconds within = 5s) {
    const auto until = Clock::now() + within;
    do {
        if (memqd.stderr_text().find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(10ms);
    } while (Clock::now() < until);
    return false;
}

TEST(TlsServer, OpensslSClientSubscribesAndGetsTheAck) {
    TlsMemqd memqd;
    const std::string output = output_of(
        "printf '%s\\n' '" + e2e::subscribe_command("t") + "' quit | timeout 10 openssl s_client -connect 127.0.0.1:" +
        std::to_string(memqd.tls_port()) + " -quiet -verify_return_error -CAfile '" + cert_file("ca.pem") +
        "' 2>/dev/null");
    EXPECT_TRUE(is_json(output.substr(0, output.find("\r\n")), kAck)) << output;
}

// TLS 1.2 is the least memqd takes; OpenSSL's clients prefer 1.3, which memqd negotiates.
TEST(TlsServer, OpensslSClientOverTls12AndTls13) {
    TlsMemqd memqd;
    for (const char* version : {"-tls1_2", "-tls1_3"}) {
        const std::string output = output_of(
            "printf '%s\\n' '" + e2e::subscribe_command("t") + "' quit | timeout 10 openssl s_client " + version +
            " -connect 127.0.0.1:" + std::to_string(memqd.tls_port()) + " -quiet -verify_return_error -CAfile '" +
            cert_file("ca.pem") + "' 2>/dev/null");
        EXPECT_TRUE(is_json(output.substr(0, output.find("\r\n")), kAck)) << version << ": " << output;
    }
}

// A client that would speak TLS 1.1 (its own floor lowered) is refused by memqd.
TEST(TlsServer, Tls11IsRefused) {
    TlsMemqd memqd;
    output_of("echo quit | timeout 10 openssl s_client -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' -connect 127.0.0.1:" +
              std::to_string(memqd.tls_port()) + " -quiet >/dev/null 2>&1");
    EXPECT_TRUE(log_has(memqd, "unsupported protocol")) << memqd.stderr_text();
}

TEST(TlsServer, OpensslSClientWithAClientCertificateOverMutualTls) {
    TlsMemqd memqd(ClientCertificates::required);
    const std::string output = output_of(
        "printf '%s\\n' '" + e2e::subscribe_command("t") + "' quit | timeout 10 openssl s_client -connect 127.0.0.1:" +
        std::to_string(memqd.tls_port()) + " -quiet -verify_return_error -CAfile '" + cert_file("ca.pem") +
        "' -cert '" + cert_file("client.pem") + "' -key '" + cert_file("client.key") + "' 2>/dev/null");
    EXPECT_TRUE(is_json(output.substr(0, output.find("\r\n")), kAck)) << output;
}

TEST(TlsServer, RoundTripBetweenATlsAndAPlainClient) {
    TlsMemqd memqd;
    TlsLineClient subscriber(memqd.tls_port(), client_files());
    subscriber.send_line(e2e::subscribe_command("t"));
    EXPECT_TRUE(is_json(subscriber.read_line(), kAck));
    e2e::LineClient publisher(memqd.port());
    publisher.send_line(e2e::send_command("t", "over both"));
    EXPECT_TRUE(is_json(publisher.read_line(), kAck));
    EXPECT_TRUE(is_json(subscriber.read_line(), e2e::delivered_message("t", "over both", 0)));
}

TEST(TlsServer, QuitFlushesTheRepliesThenSendsCloseNotify) {
    TlsMemqd memqd;
    TlsLineClient client(memqd.tls_port(), client_files());
    client.send_raw(e2e::subscribe_command("t") + "\n" + e2e::send_command("t", "m") + "\nquit\n");
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_TRUE(is_json(client.read_line(), e2e::delivered_message("t", "m", 0)));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_EQ(client.read_until_closed(5s), TlsLineClient::Ending::close_notify);
}

TEST(TlsServer, MutualTlsRefusesAClientWithoutACertificateAndServesOthers) {
    TlsMemqd memqd(ClientCertificates::required);
    {
        // Under TLS 1.3 the client's side of the handshake ends before the
        // server's verdict, which comes as an alert on the first read.
        TlsLineClient refused(memqd.tls_port(), client_files());
        refused.send_line(e2e::subscribe_command("t"));
        EXPECT_FALSE(refused.read_line().has_value());
        EXPECT_NE(refused.last_error().find("certificate required"), std::string::npos) << refused.last_error();
    }
    TlsLineClient accepted(memqd.tls_port(), client_files("client"));
    accepted.send_line(e2e::subscribe_command("t"));
    EXPECT_TRUE(is_json(accepted.read_line(), kAck));
    EXPECT_TRUE(log_has(memqd, "TLS handshake failed: connection 1")) << memqd.stderr_text();
}

TEST(TlsServer, MutualTlsRefusesACertificateFromAnotherCa) {
    TlsMemqd memqd(ClientCertificates::required);
    TlsLineClient refused(memqd.tls_port(), client_files("other-client"));
    refused.send_line(e2e::subscribe_command("t"));
    EXPECT_FALSE(refused.read_line().has_value());
    EXPECT_NE(refused.last_error().find("unknown ca"), std::string::npos) << refused.last_error();
}

TEST(TlsServer, MutualTlsRefusesAnExpiredCertificate) {
    TlsMemqd memqd(ClientCertificates::required);
    TlsLineClient refused(memqd.tls_port(), client_files("expired-client"));
    refused.send_line(e2e::subscribe_command("t"));
    EXPECT_FALSE(refused.read_line().has_value());
    EXPECT_NE(refused.last_error().find("certificate expired"), std::string::npos) << refused.last_error();
}

// The bound is --tls-handshake-timeout-ms; the stalled client sent the first
// bytes of a record header and nothing more.
TEST(TlsServer, StalledHandshakeIsClosedAtTheBoundWhileAnotherClientCompletes) {
    constexpr auto kBound = 2000ms;
    TlsMemqd memqd(ClientCertificates::not_asked, {"--tls-handshake-timeout-ms", "2000"});
    const auto stalled_at = Clock::now();
    e2e::LineClient stalled(memqd.tls_port());
    stalled.send_raw(std::string("\x16\x03\x01\x01", 4));
    {
        TlsLineClient other(memqd.tls_port(), client_files());
        other.send_line(e2e::subscribe_command("t"));
        EXPECT_TRUE(is_json(other.read_line(), kAck));
    }
    EXPECT_LT(Clock::now() - stalled_at, kBound) << "the other client took the whole bound: the test proves nothing";
    EXPECT_EQ(stalled.read_until_closed(10s), e2e::LineClient::Ending::eof);
    const auto closed_after = Clock::now() - stalled_at;
    EXPECT_GE(closed_after, kBound);
    EXPECT_LT(closed_after, kBound + 3s);
    EXPECT_TRUE(log_has(memqd, "not done within 2000 ms")) << memqd.stderr_text();
}

// Each failed handshake is a limit hit: one line a second, the rest counted.
TEST(TlsServer, AFloodOfFailedHandshakesIsLoggedOnceASecond) {
    TlsMemqd memqd;
    constexpr int kAttempts = 20;
    for (int i = 0; i < kAttempts; ++i) {
        e2e::LineClient garbage(memqd.tls_port());
        garbage.send_line("not a TLS record");
        EXPECT_EQ(garbage.read_until_closed(5s), e2e::LineClient::Ending::eof);
    }
    // The flush of what was left out comes once a second has passed since the last line.
    EXPECT_TRUE(log_has(memqd, "left out since the last line, 20 in all")) << memqd.stderr_text();
    const std::string log = memqd.stderr_text();
    std::size_t lines = 0;
    for (std::size_t at = log.find("TLS handshake failed: connection"); at != std::string::npos;
         at = log.find("TLS handshake failed: connection", at + 1)) {
        ++lines;
    }
    EXPECT_GE(lines, 1u);
    EXPECT_LT(lines, static_cast<std::size_t>(kAttempts)) << log;
}

TEST(TlsServer, HandshakeTimeoutMustBePositive) {
    const e2e::RunResult zero = e2e::run_memqd({"--tls-port", "0", "--tls-cert", cert_file("server.pem"),
                                                "--tls-key", cert_file("server.key"),
                                                "--tls-handshake-timeout-ms", "0"});
    EXPECT_EQ(zero.status.code, 2);
    EXPECT_NE(zero.stderr_text.find("--tls-handshake-timeout-ms"), std::string::npos) << zero.stderr_text;
    TlsMemqd one_ms(ClientCertificates::not_asked, {"--tls-handshake-timeout-ms", "1"});
    EXPECT_NE(one_ms.stderr_text().find("handshake timeout 1 ms"), std::string::npos) << one_ms.stderr_text();
}

TEST(TlsServer, LineOfExactlyMaxLineBytesIsAcceptedOverTls) {
    TlsMemqd memqd(ClientCertificates::not_asked, {"--max-line-bytes", "1024"});
    TlsLineClient client(memqd.tls_port(), client_files());
    const std::string line = e2e::subscribe_command("t") + std::string(1024 - e2e::subscribe_command("t").size(), ' ');
    ASSERT_EQ(line.size(), 1024u);
    client.send_line(line);
    EXPECT_TRUE(is_json(client.read_line(), kAck));
}

TEST(TlsServer, LineOneByteOverMaxLineBytesIsTooLongOverTls) {
    TlsMemqd memqd(ClientCertificates::not_asked, {"--max-line-bytes", "1024"});
    TlsLineClient client(memqd.tls_port(), client_files());
    const std::string line = e2e::subscribe_command("t") + std::string(1025 - e2e::subscribe_command("t").size(), ' ');
    ASSERT_EQ(line.size(), 1025u);
    client.send_line(line);
    EXPECT_TRUE(is_json(client.read_line(), e2e::error_reply("Line too long")));
    EXPECT_EQ(client.read_until_closed(5s), TlsLineClient::Ending::close_notify);
}

TEST(TlsServer, SlowConsumerOverTlsIsClosed) {
    TlsMemqd memqd(ClientCertificates::not_asked, {"--max-pending-bytes", "65536"});
    TlsLineClient stalled(memqd.tls_port(), client_files(), /*receive_buffer_bytes=*/4096);
    stalled.send_line(e2e::subscribe_command("t"));
    EXPECT_TRUE(is_json(stalled.read_line(), kAck));
    e2e::LineClient publisher(memqd.port());
    const std::string message(1000, 'x');
    bool closed = false;
    for (int batch = 0; batch < 200 && !closed; ++batch) {
        std::string lines;
        for (int i = 0; i < 100; ++i) lines += e2e::send_command("t", message) + "\n";
        publisher.send_raw(lines);
        for (int i = 0; i < 100; ++i) ASSERT_TRUE(is_json(publisher.read_line(), kAck));
        closed = memqd.stderr_text().find("slow consumer") != std::string::npos;
    }
    EXPECT_TRUE(closed) << memqd.stderr_text();
    EXPECT_NE(stalled.read_until_closed(10s), TlsLineClient::Ending::timeout);
}

TEST(TlsServer, SigtermFlushesWhatATlsClientIsOwed) {
    TlsMemqd memqd;
    TlsLineClient client(memqd.tls_port(), client_files());
    client.send_line(e2e::subscribe_command("t"));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
    EXPECT_TRUE(memqd.process().stop().is_clean());
    EXPECT_EQ(client.read_until_closed(5s), TlsLineClient::Ending::close_notify);
}

TEST(TlsServer, MissingCertificateFileExitsTwoNamingIt) {
    const e2e::RunResult result = e2e::run_memqd(
        {"--tls-port", "0", "--tls-cert", cert_file("absent.pem"), "--tls-key", cert_file("server.key")});
    EXPECT_EQ(result.status.code, 2);
    EXPECT_NE(result.stderr_text.find("cannot read --tls-cert"), std::string::npos) << result.stderr_text;
}

TEST(TlsServer, KeyNotMatchingTheCertificateExitsTwo) {
    const e2e::RunResult result = e2e::run_memqd(
        {"--tls-port", "0", "--tls-cert", cert_file("server.pem"), "--tls-key", cert_file("client.key")});
    EXPECT_EQ(result.status.code, 2);
    EXPECT_NE(result.stderr_text.find("--tls-key"), std::string::npos) << result.stderr_text;
    EXPECT_NE(result.stderr_text.find("key values mismatch"), std::string::npos) << result.stderr_text;
}

TEST(TlsServer, NotAPemCertificateExitsTwo) {
    const e2e::RunResult result = e2e::run_memqd(
        {"--tls-port", "0", "--tls-cert", cert_file("server.key"), "--tls-key", cert_file("server.key")});
    EXPECT_EQ(result.status.code, 2);
    EXPECT_NE(result.stderr_text.find("is not a PEM certificate"), std::string::npos) << result.stderr_text;
}

TEST(TlsServer, TlsPortNeedsACertificateAndAKey) {
    const e2e::RunResult result = e2e::run_memqd({"--tls-port", "0", "--tls-cert", cert_file("server.pem")});
    EXPECT_EQ(result.status.code, 2);
    EXPECT_NE(result.stderr_text.find("--tls-port needs --tls-cert and --tls-key"), std::string::npos)
        << result.stderr_text;
}

TEST(TlsServer, TlsOptionsWithoutTlsPortAreAUsageError) {
    const e2e::RunResult result = e2e::run_memqd({"--tls-cert", cert_file("server.pem")});
    EXPECT_EQ(result.status.code, 2);
    EXPECT_NE(result.stderr_text.find("need --tls-port"), std::string::npos) << result.stderr_text;
}

TEST(TlsServer, WithoutTlsFlagsMemqdListensOnlyInPlainTcp) {
    e2e::MemqdProcess memqd(e2e::any_port());
    EXPECT_EQ(memqd.stderr_text().find("TLS"), std::string::npos) << memqd.stderr_text();
    e2e::LineClient client(memqd.port());
    client.send_line(e2e::subscribe_command("t"));
    EXPECT_TRUE(is_json(client.read_line(), kAck));
}

}  // namespace
}  // namespace memq::tls_test
