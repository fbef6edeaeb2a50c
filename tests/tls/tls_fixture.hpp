// tls_fixture.hpp — what every TLS test starts from: certificates made by
// make_certs.sh (once per test process, in a temporary directory) and memqd
// listening on both its plain port and a TLS port, both on port 0 and read back.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "memqd_process.hpp"
#include "tls_line_client.hpp"

namespace memq::tls_test {

// The path of one of make_certs.sh's files ("ca.pem", "client.key", ...).
std::string cert_file(const std::string& name);

// A client's files: the test CA and, if `client` is not empty, CLIENT.pem and CLIENT.key.
TlsClientFiles client_files(const std::string& client = "");

enum class ClientCertificates { not_asked, required };

class TlsMemqd {
public:
    // memqd --port 0 --tls-port 0 with the server certificate; with
    // `required`, --tls-client-ca ca.pem (mutual TLS); then `extra_args`.
    explicit TlsMemqd(ClientCertificates client_certificates = ClientCertificates::not_asked,
                      std::vector<std::string> extra_args = {});

    std::uint16_t port() const { return memqd_->port(); }  // plain TCP
    std::uint16_t tls_port() const { return tls_port_; }
    e2e::MemqdProcess& process() { return *memqd_; }
    std::string stderr_text() const { return memqd_->stderr_text(); }

private:
    e2e::TempDir dir_;
    std::unique_ptr<e2e::MemqdProcess> memqd_;
    std::uint16_t tls_port_ = 0;
};

}  // namespace memq::tls_test
