// http_request.hpp — the little HTTP/1.1 memqd's metrics port speaks: a
// request-head parser and the routing of /metrics, /healthz and /readyz.
//
// Rules:
// - Pure: no sockets, no clocks. The Asio shell (metrics_server.hpp) feeds
//   bytes in as they arrive and writes the text answer() returns.
// - Only the head is read: request line and header fields, up to the empty
//   line. A head of at most `head_bytes_max` bytes (its final empty line
//   included) is read; a longer one is refused with 431 as soon as it passes
//   the bound, so a client can never make the parser hold more.
// - Bytes after the head (a body, a pipelined request) are ignored: every
//   answer says "Connection: close" and the shell closes after writing it.
// - Lines may end in CRLF or a bare LF (RFC 9112 2.2 allows both to be read).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace memq::http {

inline constexpr std::size_t kDefaultHeadBytesMax = 8192;

struct Request {
    std::string method;  // as sent: methods are case-sensitive
    std::string target;  // origin-form, e.g. "/metrics?x=1"
    std::string path;    // the target without its query
    int minor_version = 1;  // HTTP/1.<minor_version>
};

enum class ParseState {
    incomplete,  // feed more bytes
    complete,    // request() is the request
    bad,         // malformed: answer 400
    too_large,   // the head passed head_bytes_max: answer 431
};

class RequestParser {
public:
    explicit RequestParser(std::size_t head_bytes_max = kDefaultHeadBytesMax) : head_bytes_max_(head_bytes_max) {}

    // Takes the next bytes of the connection. Once the state is no longer
    // `incomplete` it stays as it is and further bytes are ignored.
    ParseState feed(std::string_view bytes);

    ParseState state() const { return state_; }
    const Request& request() const { return request_; }

private:
    ParseState finish(std::string_view head);

    std::size_t head_bytes_max_;
    std::string buffer_;      // the head so far, never more than head_bytes_max_ bytes
    std::size_t scanned_ = 0;     // buffer_ before this holds no end of head
    std::size_t line_start_ = 0;  // where the line being scanned starts
    ParseState state_ = ParseState::incomplete;
    Request request_;
};

// What the endpoints need from the broker; called only for their paths.
struct Endpoints {
    std::function<std::string()> metrics;  // the exposition text
    std::function<bool()> ready;           // listening and not shutting down
};

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// The whole HTTP response (status line, header fields, body) for a parser
// that is no longer `incomplete`: 200 for GET /metrics, /healthz and (when
// ready) /readyz, 503 for /readyz otherwise, 404 for other paths, 405 (with
// Allow: GET) for other methods, 400 for a bad request, 431 for a head too large.
std::string answer(const RequestParser& parser, const Endpoints& endpoints);

// One response with "Connection: close" and a Content-Length.
std::string response(int status, std::string_view content_type, std::string_view body,
                     std::string_view extra_headers = {});

std::string_view reason_phrase(int status);

}  // namespace memq::http
