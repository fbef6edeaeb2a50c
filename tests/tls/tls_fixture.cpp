// tls_fixture.cpp — the certificates, made once, and memqd with a TLS port.
#include "tls_fixture.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace memq::tls_test {
namespace {

const std::filesystem::path& certificates_dir() {
    static const e2e::TempDir* const dir = [] {
        auto* made = new e2e::TempDir();  // lives as long as the process: every test uses it
        const std::string command =
            "'" MEMQ_SOURCE_DIR "/tests/tls/make_certs.sh' '" + made->path().string() + "'";
        if (std::system(command.c_str()) != 0) throw std::runtime_error("make_certs.sh failed: " + command);
        return made;
    }();
    return dir->path();
}

}  // namespace

std::string cert_file(const std::string& name) { return (certificates_dir() / name).string(); }

TlsClientFiles client_files(const std::string& client) {
    TlsClientFiles files{cert_file("ca.pem"), {}, {}};
    if (!client.empty()) {
        files.cert = cert_file(client + ".pem");
        files.key = cert_file(client + ".key");
    }
    return files;
}

TlsMemqd::TlsMemqd(ClientCertificates client_certificates, std::vector<std::string> extra_args) {
    const std::string port_file = (dir_.path() / "tls-port").string();
    std::vector<std::string> args{"--port",     "0",
                                  "--tls-port", "0",
                                  "--tls-port-file", port_file,
                                  "--tls-cert", cert_file("server.pem"),
                                  "--tls-key",  cert_file("server.key")};
    if (client_certificates == ClientCertificates::required) {
        args.insert(args.end(), {"--tls-client-ca", cert_file("ca.pem")});
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    memqd_ = std::make_unique<e2e::MemqdProcess>(args);
    // memqd writes the TLS port file before its plain one, which MemqdProcess waited for.
    std::ifstream in(port_file);
    unsigned port = 0;
    if (!(in >> port) || port == 0 || port > 65535) throw std::runtime_error("no TLS port file from memqd");
    tls_port_ = static_cast<std::uint16_t>(port);
}

}  // namespace memq::tls_test
