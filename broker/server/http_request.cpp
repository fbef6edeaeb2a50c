// http_request.cpp — parses a request head and answers it (see http_request.hpp).
#include "http_request.hpp"

#include <algorithm>

namespace memq::http {
namespace {

// RFC 9110 5.6.2: the characters of a token (methods, field names).
bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) { return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char); }

// A field value may hold visible characters, spaces, tabs and obs-text; no other control characters.
bool is_field_value(std::string_view text) {
    return std::none_of(text.begin(), text.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return (byte < 0x20 && c != '\t') || byte == 0x7f;
    });
}

// An origin-form target: "/" then visible ASCII only.
bool is_origin_target(std::string_view text) {
    if (text.empty() || text.front() != '/') return false;
    return std::all_of(text.begin(), text.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte > 0x20 && byte < 0x7f;
    });
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

// The next line of `rest` without its LF or CRLF; advances `rest` past it.
std::string_view take_line(std::string_view& rest) {
    const std::size_t newline = rest.find('\n');
    std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

}  // namespace

ParseState RequestParser::feed(std::string_view bytes) {
    if (state_ != ParseState::incomplete) return state_;
    // Never hold more than one byte past the bound: that byte proves the head too long.
    const std::size_t room = head_bytes_max_ + 1 - buffer_.size();
    buffer_.append(bytes.substr(0, room));
    // The head ends at the first empty line: a LF right after the LF ending
    // the previous line, with at most a CR between them.
    for (std::size_t i = scanned_; i < buffer_.size(); ++i) {
        if (buffer_[i] != '\n') continue;
        const std::size_t line_length = i - line_start_;
        const bool empty = line_length == 0 || (line_length == 1 && buffer_[line_start_] == '\r');
        if (empty && line_start_ != 0) {
            const std::size_t head_bytes = i + 1;
            if (head_bytes > head_bytes_max_) return state_ = ParseState::too_large;
            return state_ = finish(std::string_view(buffer_).substr(0, head_bytes));
        }
        if (empty) return state_ = ParseState::bad;  // no request line
        line_start_ = i + 1;
    }
    scanned_ = buffer_.size();
    if (buffer_.size() > head_bytes_max_) return state_ = ParseState::too_large;
    return state_;
}

ParseState RequestParser::finish(std::string_view head) {
    const std::string_view request_line = take_line(head);
    const std::size_t first_space = request_line.find(' ');
    const std::size_t second_space =
        first_space == std::string_view::npos ? std::string_view::npos : request_line.find(' ', first_space + 1);
    if (second_space == std::string_view::npos) return ParseState::bad;
    const std::string_view method = request_line.substr(0, first_space);
    const std::string_view target = request_line.substr(first_space + 1, second_space - first_space - 1);
    const std::string_view version = request_line.substr(second_space + 1);
    if (!is_token(method) || !is_origin_target(target)) return ParseState::bad;
    if (version == "HTTP/1.1") request_.minor_version = 1;
    else if (version == "HTTP/1.0") request_.minor_version = 0;
    else return ParseState::bad;

    int hosts = 0;
    while (!head.empty()) {
        const std::string_view field = take_line(head);
        if (field.empty()) break;  // the final empty line
        const std::size_t colon = field.find(':');
        // No name, a space before the colon, or an obsolete folded line: all bad (RFC 9112 5.1, 5.2).
        if (colon == std::string_view::npos || !is_token(field.substr(0, colon))) return ParseState::bad;
        if (!is_field_value(field.substr(colon + 1))) return ParseState::bad;
        if (equal_ignoring_case(field.substr(0, colon), "host")) ++hosts;
    }
    // RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; HTTP/1.0 at most one.
    if (hosts > 1 || (request_.minor_version == 1 && hosts == 0)) return ParseState::bad;

    request_.method = std::string(method);
    request_.target = std::string(target);
    request_.path = std::string(target.substr(0, target.find('?')));
    return ParseState::complete;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 431: return "Request Header Fields Too Large";
        case 503: return "Service Unavailable";
        default: return "Unknown";
    }
}

std::string response(int status, std::string_view content_type, std::string_view body,
                     std::string_view extra_headers) {
    std::string text;
    text.reserve(128 + body.size());
    text += "HTTP/1.1 ";
    text += std::to_string(status);
    text += ' ';
    text += reason_phrase(status);
    text += "\r\nContent-Type: ";
    text += content_type;
    text += "\r\nContent-Length: ";
    text += std::to_string(body.size());
    text += "\r\nConnection: close\r\n";
    text += extra_headers;
    text += "\r\n";
    text += body;
    return text;
}

std::string answer(const RequestParser& parser, const Endpoints& endpoints) {
    constexpr std::string_view kText = "text/plain; charset=utf-8";
    switch (parser.state()) {
        case ParseState::incomplete:
        case ParseState::bad: return response(400, kText, "bad request\n");
        case ParseState::too_large: return response(431, kText, "request head too large\n");
        case ParseState::complete: break;
    }
    const Request& request = parser.request();
    const std::string& path = request.path;
    if (path != "/metrics" && path != "/healthz" && path != "/readyz") return response(404, kText, "not found\n");
    if (request.method != "GET") return response(405, kText, "method not allowed\n", "Allow: GET\r\n");
    if (path == "/metrics") return response(200, kMetricsContentType, endpoints.metrics());
    if (path == "/healthz") return response(200, kText, "ok\n");
    if (endpoints.ready()) return response(200, kText, "ready\n");
    return response(503, kText, "not ready\n");
}

}  // namespace memq::http
