// http_request_test.cpp — memqd's metrics port: the request-head parser and the routing (no sockets).
#include "http_request.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace memq::http {
namespace {

ParseState parse_whole(std::string_view head, std::size_t limit = kDefaultHeadBytesMax) {
    RequestParser parser(limit);
    return parser.feed(head);
}

// A GET head of exactly `bytes` bytes: the Host value is padded to fit.
std::string head_of_size(std::size_t bytes) {
    const std::string start = "GET /metrics HTTP/1.1\r\nHost: ";
    const std::string end = "\r\n\r\n";
    EXPECT_GE(bytes, start.size() + end.size() + 1);
    return start + std::string(bytes - start.size() - end.size(), 'h') + end;
}

int status_of(const std::string& response) { return std::stoi(response.substr(9, 3)); }

std::string body_of(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

TEST(HttpRequestParser, ReadsTheRequestLineAndSplitsOffTheQuery) {
    RequestParser parser;
    ASSERT_EQ(parser.feed("GET /metrics?name=x HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"),
              ParseState::complete);
    EXPECT_EQ(parser.request().method, "GET");
    EXPECT_EQ(parser.request().target, "/metrics?name=x");
    EXPECT_EQ(parser.request().path, "/metrics");
    EXPECT_EQ(parser.request().minor_version, 1);
}

TEST(HttpRequestParser, TakesTheHeadInPiecesAsSmallAsOneByte) {
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    RequestParser parser;
    for (std::size_t i = 0; i + 1 < head.size(); ++i) {
        ASSERT_EQ(parser.feed(head.substr(i, 1)), ParseState::incomplete) << "after byte " << i;
    }
    EXPECT_EQ(parser.feed(head.substr(head.size() - 1)), ParseState::complete);
    EXPECT_EQ(parser.request().path, "/healthz");
}

TEST(HttpRequestParser, AcceptsBareLineFeedsAndHttp10WithoutHost) {
    EXPECT_EQ(parse_whole("GET / HTTP/1.1\nHost: a\n\n"), ParseState::complete);
    RequestParser parser;
    ASSERT_EQ(parser.feed("GET /readyz HTTP/1.0\r\n\r\n"), ParseState::complete);
    EXPECT_EQ(parser.request().minor_version, 0);
}

TEST(HttpRequestParser, IgnoresWhatFollowsTheHead) {
    RequestParser parser;
    EXPECT_EQ(parser.feed("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE"), ParseState::complete);
    EXPECT_EQ(parser.feed("more garbage\r\n\r\n"), ParseState::complete);
    EXPECT_EQ(parser.request().path, "/metrics");
}

TEST(HttpRequestParser, StaysIncompleteUntilTheEmptyLine) {
    RequestParser parser;
    EXPECT_EQ(parser.feed("GET /metrics HTTP/1.1\r\nHost: a\r\n"), ParseState::incomplete);
    EXPECT_EQ(parser.feed("\r"), ParseState::incomplete);
    EXPECT_EQ(parser.feed("\n"), ParseState::complete);
}

TEST(HttpRequestParser, RefusesMalformedHeads) {
    for (const std::string_view head : std::initializer_list<std::string_view>{
             "\r\n",                                        // no request line
             "GET\r\nHost: a\r\n\r\n",                      // no target, no version
             "GET /metrics\r\nHost: a\r\n\r\n",             // no version
             "GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n",   // two spaces
             "GET /metrics HTTP/1.1 x\r\nHost: a\r\n\r\n",  // a fourth part
             "GET metrics HTTP/1.1\r\nHost: a\r\n\r\n",     // not origin-form
             "GET http://h/metrics HTTP/1.1\r\nHost: a\r\n\r\n",
             "GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n",
             "GET /metrics http/1.1\r\nHost: a\r\n\r\n",
             "G(T /metrics HTTP/1.1\r\nHost: a\r\n\r\n",   // not a token
             "GET /metrics HTTP/1.1\r\n\r\n",              // HTTP/1.1 without Host
             "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
             "GET /metrics HTTP/1.1\r\nHost : a\r\n\r\n",  // space before the colon
             "GET /metrics HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
             "GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
             std::string_view("GET /metrics HTTP/1.1\r\nHost: a\0b\r\n\r\n", 36),
         }) {
        EXPECT_EQ(parse_whole(head), ParseState::bad) << head;
    }
}

TEST(HttpRequestParser, AHeadOfExactlyTheLimitIsRead) {
    constexpr std::size_t kLimit = 100;
    const std::string head = head_of_size(kLimit);
    ASSERT_EQ(head.size(), kLimit);
    EXPECT_EQ(parse_whole(head, kLimit), ParseState::complete);
}

TEST(HttpRequestParser, AHeadOneByteUnderTheLimitIsRead) {
    constexpr std::size_t kLimit = 100;
    EXPECT_EQ(parse_whole(head_of_size(kLimit - 1), kLimit), ParseState::complete);
}

TEST(HttpRequestParser, AHeadOneByteOverTheLimitIsTooLarge) {
    constexpr std::size_t kLimit = 100;
    const std::string head = head_of_size(kLimit + 1);
    EXPECT_EQ(parse_whole(head, kLimit), ParseState::too_large);
    // Byte by byte too: refused at the byte that passes the limit, not before.
    RequestParser parser(kLimit);
    for (std::size_t i = 0; i < kLimit; ++i) ASSERT_EQ(parser.feed(head.substr(i, 1)), ParseState::incomplete);
    EXPECT_EQ(parser.feed(head.substr(kLimit, 1)), ParseState::too_large);
}

TEST(HttpRequestParser, AnEndlessHeadIsRefusedOnceItPassesTheLimit) {
    RequestParser parser(64);
    EXPECT_EQ(parser.feed(std::string(64, 'G')), ParseState::incomplete);
    EXPECT_EQ(parser.feed("G"), ParseState::too_large);
    EXPECT_EQ(parser.feed("\r\n\r\n"), ParseState::too_large);
}

class HttpAnswer : public ::testing::Test {
protected:
    bool ready = true;
    int scrapes = 0;
    Endpoints endpoints{[this] {
                            ++scrapes;
                            return std::string("memq_x 1\n");
                        },
                        [this] { return ready; }};

    std::string answer_to(std::string_view head) {
        RequestParser parser(128);
        parser.feed(head);
        return answer(parser, endpoints);
    }
};

TEST_F(HttpAnswer, MetricsAreServedInTheExpositionFormat) {
    const std::string text = answer_to("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(status_of(text), 200);
    EXPECT_NE(text.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
    EXPECT_NE(text.find("Content-Length: 9\r\n"), std::string::npos);
    EXPECT_NE(text.find("Connection: close\r\n"), std::string::npos);
    EXPECT_EQ(body_of(text), "memq_x 1\n");
    EXPECT_EQ(scrapes, 1);
}

TEST_F(HttpAnswer, HealthzIsOkEvenWhenNotReady) {
    ready = false;
    const std::string text = answer_to("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(status_of(text), 200);
    EXPECT_EQ(body_of(text), "ok\n");
}

TEST_F(HttpAnswer, ReadyzFollowsReadiness) {
    EXPECT_EQ(status_of(answer_to("GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")), 200);
    ready = false;
    EXPECT_EQ(status_of(answer_to("GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n")), 503);
}

TEST_F(HttpAnswer, UnknownPathsAreNotFound) {
    EXPECT_EQ(status_of(answer_to("GET / HTTP/1.1\r\nHost: a\r\n\r\n")), 404);
    EXPECT_EQ(status_of(answer_to("GET /metrics/ HTTP/1.1\r\nHost: a\r\n\r\n")), 404);
    EXPECT_EQ(status_of(answer_to("POST /nothing HTTP/1.1\r\nHost: a\r\n\r\n")), 404);
}

TEST_F(HttpAnswer, OtherMethodsAreNotAllowedAndNothingIsScraped) {
    for (const std::string_view method : {"POST", "PUT", "DELETE", "HEAD", "get"}) {
        const std::string text = answer_to(std::string(method) + " /metrics HTTP/1.1\r\nHost: a\r\n\r\n");
        EXPECT_EQ(status_of(text), 405) << method;
        EXPECT_NE(text.find("Allow: GET\r\n"), std::string::npos);
    }
    EXPECT_EQ(scrapes, 0);
}

TEST_F(HttpAnswer, BadAndOversizedRequests) {
    EXPECT_EQ(status_of(answer_to("GET /metrics\r\n\r\n")), 400);
    EXPECT_EQ(status_of(answer_to("GET /metrics HTTP/1.1\r\nHost: " + std::string(200, 'h') + "\r\n\r\n")), 431);
    EXPECT_EQ(scrapes, 0);
}

TEST(HttpResponse, ContentLengthCountsTheBody) {
    const std::string text = response(503, "text/plain", "abc\n", "Retry-After: 1\r\n");
    EXPECT_EQ(text,
              "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
              "Connection: close\r\nRetry-After: 1\r\n\r\nabc\n");
}

}  // namespace
}  // namespace memq::http
