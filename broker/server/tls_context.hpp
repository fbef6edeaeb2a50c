// tls_context.hpp — memqd's TLS settings: the certificate files made into an asio::ssl::context.
//
// Rules: TLS 1.2 at least (1.3 preferred, as OpenSSL negotiates it); every
// file is read once, at start-up (a new certificate needs a restart); any
// problem is a TlsSetupError whose message names the option, the file and
// the cause, so memqd can print it and exit 2 before it listens.
#pragma once

#include <stdexcept>
#include <string>

#include <asio/ssl/context.hpp>

namespace memq {

struct TlsServerFiles {
    std::string cert_file;       // --tls-cert: PEM, the server certificate (and any chain after it)
    std::string key_file;        // --tls-key: PEM, the private key of cert_file
    std::string client_ca_file;  // --tls-client-ca: PEM; empty: no client certificates asked for
};

class TlsSetupError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A server context: the certificate and key loaded and checked against each
// other; with client_ca_file, every client must present a certificate that
// CA signed, valid now (mutual TLS), or the handshake fails.
asio::ssl::context make_server_tls_context(const TlsServerFiles& files);

}  // namespace memq
