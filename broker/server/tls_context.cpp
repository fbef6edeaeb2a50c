// tls_context.cpp — loads and checks memqd's certificate, key and client CA.
#include "tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

namespace memq {
namespace {

// The file opens for reading, or a TlsSetupError names the option and the cause.
void require_readable(const char* option, const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        throw TlsSetupError("cannot read " + std::string(option) + " '" + path + "': " + std::strerror(errno));
    }
}

// OpenSSL's reason for the last failure, emptying its error queue.
std::string openssl_reason() {
    std::string reason;
    while (const unsigned long code = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        reason = text;  // the last one is the most specific
    }
    return reason.empty() ? "unknown OpenSSL error" : reason;
}

}  // namespace

asio::ssl::context make_server_tls_context(const TlsServerFiles& files) {
    require_readable("--tls-cert", files.cert_file);
    require_readable("--tls-key", files.key_file);
    if (!files.client_ca_file.empty()) require_readable("--tls-client-ca", files.client_ca_file);

    asio::ssl::context context(asio::ssl::context::tls_server);
    SSL_CTX* const native = context.native_handle();
    ERR_clear_error();
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
        throw TlsSetupError("cannot require TLS 1.2: " + openssl_reason());
    }
    context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::single_dh_use);
    if (SSL_CTX_use_certificate_chain_file(native, files.cert_file.c_str()) != 1) {
        throw TlsSetupError("--tls-cert '" + files.cert_file + "' is not a PEM certificate: " + openssl_reason());
    }
    if (SSL_CTX_use_PrivateKey_file(native, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw TlsSetupError("--tls-key '" + files.key_file + "' is not a PEM private key of --tls-cert '" +
                            files.cert_file + "': " + openssl_reason());
    }
    if (SSL_CTX_check_private_key(native) != 1) {
        throw TlsSetupError("--tls-key '" + files.key_file + "' does not match --tls-cert '" + files.cert_file +
                            "': " + openssl_reason());
    }
    if (!files.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(native, files.client_ca_file.c_str(), nullptr) != 1) {
            throw TlsSetupError("--tls-client-ca '" + files.client_ca_file +
                                "' holds no PEM certificate: " + openssl_reason());
        }
        // The CA names the server asks for, so a client with several certificates picks the right one.
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str())) {
            SSL_CTX_set_client_CA_list(native, names);
        }
        context.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    }
    ERR_clear_error();
    return context;
}

}  // namespace memq
