// transport.cpp — the client's TLS context, handshake and the words for TLS failures.
#include "transport.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <asio/post.hpp>
#include <asio/ssl/error.hpp>

#include "errors.hpp"

namespace memq::detail {
namespace {

void require_readable(const char* option, const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw TlsError(std::string(option) + " '" + path + "' cannot be read: " + std::strerror(errno));
}

std::string openssl_reason() {
    std::string reason;
    while (const unsigned long code = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        reason = text;
    }
    return reason.empty() ? "unknown OpenSSL error" : reason;
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

}  // namespace

void Transport::configure(const TlsOptions& options) {
    context_.reset();
    if (!options.tls) return;
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
        throw TlsError("tls_cert_file and tls_key_file go together: give both or neither");
    }
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX* const native = context->native_handle();
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    if (options.tls_ca_file.empty()) {
        if (SSL_CTX_set_default_verify_paths(native) != 1) {
            throw TlsError("cannot load the system's CA certificates: " + openssl_reason());
        }
    } else {
        require_readable("tls_ca_file", options.tls_ca_file);
        if (SSL_CTX_load_verify_locations(native, options.tls_ca_file.c_str(), nullptr) != 1) {
            throw TlsError("tls_ca_file '" + options.tls_ca_file + "' holds no PEM certificate: " + openssl_reason());
        }
    }
    if (!options.tls_cert_file.empty()) {
        require_readable("tls_cert_file", options.tls_cert_file);
        require_readable("tls_key_file", options.tls_key_file);
        if (SSL_CTX_use_certificate_chain_file(native, options.tls_cert_file.c_str()) != 1) {
            throw TlsError("tls_cert_file '" + options.tls_cert_file + "' is not a PEM certificate: " +
                           openssl_reason());
        }
        if (SSL_CTX_use_PrivateKey_file(native, options.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(native) != 1) {
            throw TlsError("tls_key_file '" + options.tls_key_file + "' is not the private key of tls_cert_file '" +
                           options.tls_cert_file + "': " + openssl_reason());
        }
    }
    context->set_verify_mode(asio::ssl::verify_peer);
    ERR_clear_error();
    context_ = std::move(context);
    server_name_ = options.tls_server_name;
}

void Transport::async_handshake(const std::string& host, std::function<void(std::error_code)> handler) {
    stream_.reset();
    if (!context_) {
        asio::post(socket_.get_executor(), [handler = std::move(handler)] { handler({}); });
        return;
    }
    stream_ = std::make_shared<Stream>(socket_, *context_);
    SSL* const ssl = stream_->native_handle();
    const std::string& name = server_name_.empty() ? host : server_name_;
    std::error_code not_an_address;
    asio::ip::make_address(name, not_an_address);
    if (not_an_address) {
        SSL_set_tlsext_host_name(ssl, name.c_str());  // SNI is for names only
        SSL_set1_host(ssl, name.c_str());
    } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    }
    stream_->async_handshake(asio::ssl::stream_base::client,
                             [stream = stream_, handler = std::move(handler)](std::error_code error) {
                                 handler(error);
                             });
}

void Transport::close() {
    std::error_code ignored;
    socket_.close(ignored);
}

bool Transport::is_tls_error(const std::error_code& error) {
    return error.category() == asio::error::get_ssl_category() ||
           error.category() == asio::ssl::error::get_stream_category();
}

std::error_code Transport::normalized(const std::error_code& error) {
    return error == asio::ssl::error::stream_truncated ? std::error_code(asio::error::eof) : error;
}

std::string Transport::describe(const std::error_code& error) const {
    if (!is_tls_error(error)) return error.message();
    const std::string reason = error.message();
    if (stream_) {
        const long verify = SSL_get_verify_result(stream_->native_handle());
        if (verify != X509_V_OK) {
            return "the broker's certificate was not verified: " +
                   std::string(X509_verify_cert_error_string(verify)) + " (TLS: " + reason + ")";
        }
    }
    if (contains(reason, "certificate required")) {
        return "the broker requires a client certificate (tls_cert_file, tls_key_file) (TLS: " + reason + ")";
    }
    if (contains(reason, "certificate expired")) {
        return "the broker refused our client certificate: it has expired (TLS: " + reason + ")";
    }
    if (contains(reason, "unknown ca") || contains(reason, "bad certificate") ||
        contains(reason, "certificate unknown") || contains(reason, "decrypt error")) {
        return "the broker refused our client certificate: not signed by a CA it trusts (TLS: " + reason + ")";
    }
    if (contains(reason, "wrong version number") || contains(reason, "packet length too long")) {
        return "the broker did not answer in TLS: is this its TLS port? (TLS: " + reason + ")";
    }
    return "TLS failed: " + reason;
}

}  // namespace memq::detail
