// errors.hpp — the exceptions the memq client throws, one class per way a call fails.
//
// Rules: every exception of the client derives from memq::Error (itself a
// std::runtime_error), so `catch (const memq::Error&)` catches them all.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace memq {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The broker refused a request: {"success": false, "reason": ...}.
class BrokerError : public Error {
public:
    explicit BrokerError(std::string reason)
        : Error("broker refused the request: " + reason), reason_(std::move(reason)) {}
    // The broker's words, e.g. "Malformed json message".
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string reason_;
};

// A blocking call's deadline passed first.
class Timeout : public Error {
public:
    using Error::Error;
};

// Could not connect, or the connection was lost (or closed) before the call's answer came.
class ConnectionError : public Error {
public:
    using Error::Error;
};

// TLS failed: a certificate file that cannot be loaded, the broker's
// certificate not verified, or the broker refusing ours. The message names the
// cause. A ConnectionError, so code that handles those handles this too.
class TlsError : public ConnectionError {
public:
    using ConnectionError::ConnectionError;
};

// The inbox holds ClientOptions::max_inbox_messages undelivered messages, so
// nothing more is read from the connection, and the call needs what can only
// come by reading further (a reply, room in the publish window). The message
// names the bound. Take messages with receive() and call again.
class InboxFull : public Error {
public:
    using Error::Error;
};

// The broker sent something the protocol does not allow (garbage, a reply to nothing).
class ProtocolViolation : public Error {
public:
    using Error::Error;
};

}  // namespace memq
