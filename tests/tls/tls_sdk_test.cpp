// tls_sdk_test.cpp — the SDK over TLS: memq::Client, memq::AsyncClient and
// the memq CLI round trip over TLS and mutual TLS, and each refusal is a
// TlsError (or the CLI's exit 1) whose message names the cause, while memqd
// goes on serving the clients it accepts.
#include <cstdio>
#include <string>
#include <sys/wait.h>

#include <asio/io_context.hpp>
#include <gtest/gtest.h>

#include "async_client.hpp"
#include "client.hpp"
#include "tls_fixture.hpp"

namespace memq::tls_test {
namespace {

using namespace std::chrono_literals;

ClientOptions tls_options(const std::string& client = "", const std::string& ca = "ca.pem") {
    ClientOptions options;
    options.tls = true;
    options.tls_ca_file = cert_file(ca);
    if (!client.empty()) {
        options.tls_cert_file = cert_file(client + ".pem");
        options.tls_key_file = cert_file(client + ".key");
    }
    return options;
}

// Subscribes, sends, and expects the message back, all on `client`.
void expect_round_trip(Client& client, const std::string& topic) {
    client.subscribe(topic);
    client.send(topic, "over tls");
    const std::optional<Message> message = client.receive(5s);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->topic, topic);
    EXPECT_EQ(message->msg, "over tls");
}

// The TlsError that connecting with `options` throws; fails the test if none.
std::string tls_error_connecting(std::uint16_t port, const ClientOptions& options) {
    Client client(options);
    try {
        client.connect("127.0.0.1", port, 5s);
    } catch (const TlsError& error) {
        return error.what();
    }
    ADD_FAILURE() << "connect succeeded";
    return {};
}

TEST(TlsClient, RoundTripOverTls) {
    TlsMemqd memqd;
    Client client(tls_options());
    client.connect("127.0.0.1", memqd.tls_port());
    expect_round_trip(client, "t");
}

TEST(TlsClient, RoundTripOverMutualTls) {
    TlsMemqd memqd(ClientCertificates::required);
    Client client(tls_options("client"));
    client.connect("127.0.0.1", memqd.tls_port());
    expect_round_trip(client, "t");
}

TEST(TlsClient, ServerNameDefaultsToTheHostAndMayBeAName) {
    TlsMemqd memqd;
    Client by_name(tls_options());
    by_name.connect("localhost", memqd.tls_port());
    expect_round_trip(by_name, "by name");
    ClientOptions named = tls_options();
    named.tls_server_name = "localhost";
    Client by_address(named);
    by_address.connect("127.0.0.1", memqd.tls_port());
    expect_round_trip(by_address, "by address");
}

TEST(TlsClient, NoClientCertificateIsRefusedNamingTheCauseAndMemqdServesOthers) {
    TlsMemqd memqd(ClientCertificates::required);
    const std::string error = tls_error_connecting(memqd.tls_port(), tls_options());
    EXPECT_NE(error.find("requires a client certificate"), std::string::npos) << error;
    Client accepted(tls_options("client"));
    accepted.connect("127.0.0.1", memqd.tls_port());
    expect_round_trip(accepted, "t");
}

TEST(TlsClient, CertificateFromAnotherCaIsRefusedNamingTheCause) {
    TlsMemqd memqd(ClientCertificates::required);
    const std::string error = tls_error_connecting(memqd.tls_port(), tls_options("other-client"));
    EXPECT_NE(error.find("not signed by a CA it trusts"), std::string::npos) << error;
    Client accepted(tls_options("client"));
    accepted.connect("127.0.0.1", memqd.tls_port());
    expect_round_trip(accepted, "t");
}

TEST(TlsClient, ExpiredCertificateIsRefusedNamingTheCause) {
    TlsMemqd memqd(ClientCertificates::required);
    const std::string error = tls_error_connecting(memqd.tls_port(), tls_options("expired-client"));
    EXPECT_NE(error.find("expired"), std::string::npos) << error;
    Client accepted(tls_options("client"));
    accepted.connect("127.0.0.1", memqd.tls_port());
    expect_round_trip(accepted, "t");
}

TEST(TlsClient, BrokerNotSignedByTheGivenCaIsRefused) {
    TlsMemqd memqd;
    const std::string error = tls_error_connecting(memqd.tls_port(), tls_options("", "other-ca.pem"));
    EXPECT_NE(error.find("the broker's certificate was not verified"), std::string::npos) << error;
}

TEST(TlsClient, BrokerCertificateForAnotherNameIsRefused) {
    TlsMemqd memqd;
    ClientOptions options = tls_options();
    options.tls_server_name = "elsewhere.example";
    const std::string error = tls_error_connecting(memqd.tls_port(), options);
    EXPECT_NE(error.find("hostname mismatch"), std::string::npos) << error;
}

TEST(TlsClient, UnreadableCaFileIsATlsErrorNamingIt) {
    ClientOptions options = tls_options();
    options.tls_ca_file = cert_file("absent.pem");
    const std::string error = tls_error_connecting(1, options);
    EXPECT_NE(error.find("tls_ca_file"), std::string::npos) << error;
    EXPECT_NE(error.find("absent.pem"), std::string::npos) << error;
}

TEST(TlsClient, CertificateWithoutKeyIsATlsError) {
    ClientOptions options = tls_options();
    options.tls_cert_file = cert_file("client.pem");
    const std::string error = tls_error_connecting(1, options);
    EXPECT_NE(error.find("tls_cert_file and tls_key_file go together"), std::string::npos) << error;
}

TEST(TlsClient, PlainClientOnThePlainPortOfATlsMemqd) {
    TlsMemqd memqd;
    Client client;
    client.connect("127.0.0.1", memqd.port());
    expect_round_trip(client, "t");
}

TEST(TlsAsyncClient, RoundTripOverMutualTls) {
    TlsMemqd memqd(ClientCertificates::required);
    asio::io_context io;
    TlsOptions tls = tls_options("client");
    AsyncClient client(io, {}, tls);
    std::error_code connect_error = asio::error::would_block;
    std::optional<Message> received;
    client.on_message([&](const Message& message) {
        received = message;
        client.close();
    });
    client.async_connect("127.0.0.1", memqd.tls_port(), [&](std::error_code error) {
        connect_error = error;
        client.async_subscribe("t", std::nullopt, std::nullopt, [](std::error_code, const Reply&) {});
        client.async_send("t", "async over tls", Delivery::all, std::nullopt, [](std::error_code, const Reply&) {});
    });
    io.run_for(10s);
    EXPECT_FALSE(connect_error);
    ASSERT_TRUE(received.has_value());
    EXPECT_EQ(received->msg, "async over tls");
}

TEST(TlsAsyncClient, RefusedCertificateEndsTheConnectionNamingTheCause) {
    TlsMemqd memqd(ClientCertificates::required);
    asio::io_context io;
    AsyncClient client(io, {}, tls_options("other-client"));
    std::string what;
    std::error_code reply_error;
    client.on_error([&](std::error_code, std::string_view text) { what = std::string(text); });
    client.async_connect("127.0.0.1", memqd.tls_port(), [&](std::error_code) {
        client.async_subscribe("t", std::nullopt, std::nullopt,
                               [&](std::error_code error, const Reply&) { reply_error = error; });
    });
    io.run_for(10s);
    EXPECT_TRUE(reply_error);
    EXPECT_NE(what.find("not signed by a CA it trusts"), std::string::npos) << what;
    EXPECT_EQ(client.last_error(), what);
}

TEST(TlsAsyncClient, UnverifiedBrokerIsTheConnectError) {
    TlsMemqd memqd;
    asio::io_context io;
    AsyncClient client(io, {}, tls_options("", "other-ca.pem"));
    std::error_code connect_error;
    client.async_connect("127.0.0.1", memqd.tls_port(), [&](std::error_code error) { connect_error = error; });
    io.run_for(10s);
    EXPECT_TRUE(connect_error);
    EXPECT_NE(client.last_error().find("the broker's certificate was not verified"), std::string::npos)
        << client.last_error();
}

// The CLI's stdout and stderr together, and its exit code.
struct CliRun {
    std::string output;
    int exit_code = -1;
};

CliRun run_cli(const std::string& arguments) {
    const std::string command = "'" MEMQ_CLI_PATH "' " + arguments + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    CliRun run;
    char chunk[4096];
    while (const std::size_t got = std::fread(chunk, 1, sizeof chunk, pipe)) run.output.append(chunk, got);
    const int status = ::pclose(pipe);
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return run;
}

std::string cli_tls(std::uint16_t port, const std::string& client) {
    std::string arguments = "--port " + std::to_string(port) + " --tls-ca '" + cert_file("ca.pem") + "'";
    if (!client.empty()) {
        arguments += " --tls-cert '" + cert_file(client + ".pem") + "' --tls-key '" + cert_file(client + ".key") + "'";
    }
    return arguments;
}

TEST(TlsCli, PubThenSubOverMutualTls) {
    TlsMemqd memqd(ClientCertificates::required);
    const CliRun pub = run_cli(cli_tls(memqd.tls_port(), "client") + " pub t 'hello tls'");
    EXPECT_EQ(pub.exit_code, 0) << pub.output;
    const CliRun sub = run_cli(cli_tls(memqd.tls_port(), "client") + " sub t --count 1");
    EXPECT_EQ(sub.exit_code, 0) << sub.output;
    EXPECT_EQ(sub.output, "hello tls\n");
}

TEST(TlsCli, RefusedCertificateExitsOneNamingTheCause) {
    TlsMemqd memqd(ClientCertificates::required);
    const CliRun pub = run_cli(cli_tls(memqd.tls_port(), "expired-client") + " pub t x");
    EXPECT_EQ(pub.exit_code, 1) << pub.output;
    EXPECT_NE(pub.output.find("expired"), std::string::npos) << pub.output;
}

TEST(TlsCli, HelpShowsTheTlsOptions) {
    const CliRun help = run_cli("--help");
    for (const char* option : {"--tls ", "--tls-ca FILE", "--tls-cert FILE", "--tls-key FILE"}) {
        EXPECT_NE(help.output.find(option), std::string::npos) << option << "\n" << help.output;
    }
}

}  // namespace
}  // namespace memq::tls_test
