// core_binding.cpp — memq._memq.ClientCore: the sans-IO memq::ClientCore bound
// for memq.aio, which drives it from an asyncio transport.
//
// The binding is the protocol engine of one asyncio client: bytes in, events
// out, bytes to write. It adds to the core only what keeps per-message
// Python work off the hot paths:
// - publishes (sends nobody awaits) are tallied here, not reported: their
//   acks only lower a count, a lost one or the first refusal is kept for
//   flush() to raise;
// - feed() decodes a whole chunk of input in one call and returns the
//   messages in one list; every other event waits in take_events();
// - the inbox bound is the core's (max_inbox_messages): feed() decodes no
//   message past it and holds the rest; mark_delivered(n), one call for
//   many messages taken, makes room and returns what the held input completes.
// Rules: never blocks, never releases the GIL (each call is short), and
// raises only for bad arguments; bad input from the broker is an event.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "client_core.hpp"

namespace py = pybind11;

namespace {

// publish()'s answer, as bit flags.
constexpr int kWriteNow = 1;     // the output reached the write batch: write it now
constexpr int kWindowFull = 2;   // the unanswered publishes reached the window: wait for acks

const char* kind_name(memq::RequestKind kind) {
    switch (kind) {
        case memq::RequestKind::subscribe: return "subscribe";
        case memq::RequestKind::unsubscribe: return "unsubscribe";
        case memq::RequestKind::send: return "send";
        case memq::RequestKind::raw: return "raw";
        case memq::RequestKind::resubscribe: return "resubscribe";
        case memq::RequestKind::hello: return "hello";
        case memq::RequestKind::holes: return "holes";
    }
    return "unknown";
}

memq::Delivery delivery_from(const std::string& delivery) {
    if (delivery == "all") return memq::Delivery::all;
    if (delivery == "one") return memq::Delivery::one;
    throw py::value_error("delivery must be \"all\" or \"one\", not \"" + delivery + "\"");
}

memq::Delivery delivery_of(py::handle delivery) {
    if (PyUnicode_Check(delivery.ptr())) {
        if (PyUnicode_CompareWithASCIIString(delivery.ptr(), "all") == 0) return memq::Delivery::all;
        if (PyUnicode_CompareWithASCIIString(delivery.ptr(), "one") == 0) return memq::Delivery::one;
    }
    return delivery_from(py::str(delivery).cast<std::string>());  // raises ValueError naming it
}

// A str or bytes argument as the bytes it stands for (a str as UTF-8).
std::string_view bytes_of(const py::handle& data, const char* what) {
    char* start = nullptr;
    Py_ssize_t size = 0;
    if (PyBytes_Check(data.ptr())) {
        if (PyBytes_AsStringAndSize(data.ptr(), &start, &size) != 0) throw py::error_already_set();
    } else if (PyUnicode_Check(data.ptr())) {
        const char* utf8 = PyUnicode_AsUTF8AndSize(data.ptr(), &size);
        if (utf8 == nullptr) throw py::error_already_set();
        return {utf8, static_cast<std::size_t>(size)};
    } else {
        throw py::type_error(std::string(what) + " takes bytes or str");
    }
    return {start, static_cast<std::size_t>(size)};
}

class PyClientCore {
public:
    PyClientCore(bool drop_duplicates, std::size_t line_bytes_max, std::size_t write_batch_bytes,
                 std::size_t publish_window, std::size_t max_inbox_messages)
        : core_(memq::ClientCoreOptions{line_bytes_max, drop_duplicates, max_inbox_messages}),
          write_batch_bytes_(write_batch_bytes),
          publish_window_(publish_window) {
        if (line_bytes_max == 0) throw py::value_error("line_bytes_max must be at least 1");
        if (max_inbox_messages == 0) throw py::value_error("max_inbox_messages must be at least 1");
        if (publish_window == 0) throw py::value_error("publish_window must be at least 1");
    }

    memq::RequestId subscribe(const std::string& topic, std::optional<std::int64_t> last_seen,
                              std::optional<bool> cache) {
        return core_.subscribe(topic, last_seen, cache);
    }
    memq::RequestId unsubscribe(const std::string& topic) { return core_.unsubscribe(topic); }

    // A send whose reply someone awaits: its Ack or Failure is an event.
    memq::RequestId send(const std::string& topic, const std::string& msg, const std::string& delivery,
                         std::optional<bool> cache) {
        const memq::RequestId id = core_.send(topic, msg, delivery_from(delivery), cache);
        awaited_sends_.insert(id);
        return id;
    }

    // A send nobody awaits: tallied. Returns kWriteNow | kWindowFull flags.
    // Its arguments are taken as handles, parsed here: the hot path of a
    // publisher, where pybind11's converters would cost more than the encoding.
    int publish(py::handle topic, py::handle msg, py::handle delivery, py::handle cache) {
        std::optional<bool> cache_flag;
        if (cache.ptr() == Py_True) {
            cache_flag = true;
        } else if (cache.ptr() == Py_False) {
            cache_flag = false;
        } else if (!cache.is_none()) {
            throw py::type_error("cache must be True, False or None");
        }
        core_.send(bytes_of(topic, "topic"), bytes_of(msg, "msg"), delivery_of(delivery), cache_flag);
        ++publishes_outstanding_;
        int flags = 0;
        if (core_.output_bytes() >= write_batch_bytes_) flags |= kWriteNow;
        if (publishes_outstanding_ >= publish_window_) flags |= kWindowFull;
        return flags;
    }

    std::optional<memq::RequestId> send_raw(py::handle data, bool expect_reply) {
        return core_.send_raw(bytes_of(data, "send_raw"), expect_reply);
    }

    memq::RequestId start_session() { return core_.start_session(); }

    py::bytes take_output() {
        core_.take_output(write_buffer_);
        return py::bytes(write_buffer_.data(), write_buffer_.size());
    }

    // Decodes `data` while the inbox has room; returns the messages it completed, in order.
    py::list feed(py::handle data) {
        core_.receive(bytes_of(data, "feed"));
        return take_messages();
    }

    // The application took `count` of the messages handed out; returns the
    // messages the held input completes now that there is room.
    py::list mark_delivered(std::size_t count) {
        core_.mark_delivered(count);
        return take_messages();
    }

    // The messages among the queued events, in order; the other events are sorted.
    py::list take_messages() {
        py::list messages;
        while (auto event = core_.poll_event()) {
            if (auto* message = std::get_if<memq::Message>(&*event)) {
                messages.append(py::cast(std::move(*message)));
            } else {
                sort(std::move(*event));
            }
        }
        return messages;
    }

    // Every event but messages and publish answers, oldest first, as tuples:
    //   ("ack", id, kind, raw)                 raw: the reply line unless it was the plain ack
    //   ("failure", id, kind, reason, raw)
    //   ("violation", id | None, kind | None, description, raw)
    //   ("gap", topic, expected_index, got_index)
    //   ("reset", memq.Reset)
    py::list take_events() {
        py::list result;
        for (auto& event : events_) result.append(std::move(event));
        events_.clear();
        return result;
    }

    // The connection is gone: fails what was pending. Returns the (id, kind)
    // of the lost requests that are not publishes; lost publishes are counted.
    py::list reset() {
        py::list lost;
        for (const auto& [id, kind] : core_.reset()) {
            if (kind == memq::RequestKind::send && awaited_sends_.erase(id) == 0) {
                --publishes_outstanding_;
                ++publishes_lost_;
                continue;
            }
            lost.append(py::make_tuple(id, kind_name(kind)));
        }
        return lost;
    }

    // What flush() must report, and forgets it: (publishes lost with a
    // connection, the first refusal or violation of a publish as
    // (kind, text) or None).
    py::tuple take_publish_problems() {
        py::object problem = py::none();
        if (first_publish_problem_) problem = py::make_tuple(first_publish_problem_->first, first_publish_problem_->second);
        py::tuple result = py::make_tuple(publishes_lost_, problem);
        publishes_lost_ = 0;
        first_publish_problem_.reset();
        return result;
    }

    std::size_t output_bytes() const { return core_.output_bytes(); }
    std::size_t publishes_outstanding() const { return publishes_outstanding_; }
    bool window_full() const { return publishes_outstanding_ >= publish_window_; }
    std::size_t events_pending() const { return events_.size(); }
    std::size_t pending_requests() const { return core_.pending_requests(); }
    bool input_spent() const { return core_.input_spent(); }
    bool inbox_full() const { return core_.inbox_full(); }
    // A fresh core under an inbox that kept `count` messages (memq::ClientCore::count_undelivered).
    void count_undelivered(std::size_t count) { core_.count_undelivered(count); }
    std::size_t undelivered_messages() const { return core_.undelivered_messages(); }
    bool hello_pending() const { return core_.hello_pending(); }
    std::optional<std::string> broker_incarnation() const { return core_.broker_incarnation(); }
    bool is_subscribed(const std::string& topic) const { return core_.is_subscribed(topic); }
    std::optional<std::int64_t> last_index(const std::string& topic) const { return core_.last_index(topic); }
    std::size_t subscriptions() const { return core_.subscriptions(); }

private:
    // A publish's answer is tallied; anything else becomes an event tuple.
    void sort(memq::Event event) {
        std::visit(
            [this](auto& value) {
                using T = std::decay_t<decltype(value)>;
                if constexpr (std::is_same_v<T, memq::Ack>) {
                    if (is_publish(value.request, value.kind)) return;
                    events_.push_back(py::make_tuple("ack", value.request, kind_name(value.kind), value.raw));
                } else if constexpr (std::is_same_v<T, memq::Failure>) {
                    if (is_publish(value.request, value.kind)) {
                        if (!first_publish_problem_) first_publish_problem_.emplace("failure", value.reason);
                        return;
                    }
                    events_.push_back(
                        py::make_tuple("failure", value.request, kind_name(value.kind), value.reason, value.raw));
                } else if constexpr (std::is_same_v<T, memq::ProtocolError>) {
                    if (value.request && value.kind && is_publish(*value.request, *value.kind)) {
                        if (!first_publish_problem_) {
                            first_publish_problem_.emplace("violation", value.description + ": " + value.raw);
                        }
                        return;
                    }
                    py::object id = value.request ? py::object(py::int_(*value.request)) : py::object(py::none());
                    py::object kind = value.kind ? py::object(py::str(kind_name(*value.kind))) : py::object(py::none());
                    events_.push_back(py::make_tuple("violation", id, kind, value.description, value.raw));
                } else if constexpr (std::is_same_v<T, memq::Gap>) {
                    events_.push_back(py::make_tuple("gap", value.topic, value.expected_index, value.got_index));
                } else if constexpr (std::is_same_v<T, memq::Reset>) {
                    events_.push_back(py::make_tuple("reset", py::cast(std::move(value))));
                }
            },
            event);
    }

    // An answer to a send nobody awaits: a publish, whose count goes down.
    bool is_publish(memq::RequestId id, memq::RequestKind kind) {
        if (kind != memq::RequestKind::send) return false;
        if (awaited_sends_.erase(id) > 0) return false;
        --publishes_outstanding_;
        return true;
    }

    memq::ClientCore core_;
    std::size_t write_batch_bytes_;
    std::size_t publish_window_;
    std::string write_buffer_;
    std::unordered_set<memq::RequestId> awaited_sends_;
    std::size_t publishes_outstanding_ = 0;
    std::size_t publishes_lost_ = 0;
    std::optional<std::pair<std::string, std::string>> first_publish_problem_;
    std::vector<py::object> events_;
};

}  // namespace

void bind_client_core(py::module_& module) {
    py::class_<PyClientCore>(module, "ClientCore", R"doc(
The memq protocol engine without IO (memq::ClientCore), for memq.aio.

Requests append to an output buffer (take_output()); bytes from the broker
go in through feed(), which returns the messages they completed; every other
event waits in take_events(). Publishes (sends nobody awaits) are tallied:
publishes_outstanding, take_publish_problems(). The inbox bound: at
max_inbox_messages undelivered messages (inbox_full) feed() decodes no
further and holds the rest; mark_delivered(n) says n were taken and returns
the messages the held input then completes.)doc")
        .def(py::init<bool, std::size_t, std::size_t, std::size_t, std::size_t>(), py::arg("drop_duplicates") = false,
             py::arg("line_bytes_max") = 64 * 1024 * 1024, py::arg("write_batch_bytes") = 64 * 1024,
             py::arg("publish_window") = 256 * 1024,
             py::arg("max_inbox_messages") = memq::ClientCoreOptions{}.max_inbox_messages)
        .def("subscribe", &PyClientCore::subscribe, py::arg("topic"), py::arg("last_seen") = py::none(),
             py::arg("cache") = py::none())
        .def("unsubscribe", &PyClientCore::unsubscribe, py::arg("topic"))
        .def("send", &PyClientCore::send, py::arg("topic"), py::arg("msg"), py::arg("delivery") = "all",
             py::arg("cache") = py::none())
        .def("publish", &PyClientCore::publish, py::arg("topic"), py::arg("msg"), py::arg("delivery") = "all",
             py::arg("cache") = py::none())
        .def("send_raw", &PyClientCore::send_raw, py::arg("data"), py::arg("expect_reply"))
        .def("start_session", &PyClientCore::start_session)
        .def("take_output", &PyClientCore::take_output)
        .def("feed", &PyClientCore::feed, py::arg("data"))
        .def("mark_delivered", &PyClientCore::mark_delivered, py::arg("count"))
        .def("count_undelivered", &PyClientCore::count_undelivered, py::arg("count"))
        .def("take_events", &PyClientCore::take_events)
        .def("reset", &PyClientCore::reset)
        .def("take_publish_problems", &PyClientCore::take_publish_problems)
        .def("is_subscribed", &PyClientCore::is_subscribed, py::arg("topic"))
        .def("last_index", &PyClientCore::last_index, py::arg("topic"))
        .def_property_readonly("output_bytes", &PyClientCore::output_bytes)
        .def_property_readonly("publishes_outstanding", &PyClientCore::publishes_outstanding)
        .def_property_readonly("window_full", &PyClientCore::window_full)
        .def_property_readonly("events_pending", &PyClientCore::events_pending)
        .def_property_readonly("pending_requests", &PyClientCore::pending_requests)
        .def_property_readonly("input_spent", &PyClientCore::input_spent)
        .def_property_readonly("inbox_full", &PyClientCore::inbox_full)
        .def_property_readonly("undelivered_messages", &PyClientCore::undelivered_messages)
        .def_property_readonly("hello_pending", &PyClientCore::hello_pending)
        .def_property_readonly("broker_incarnation", &PyClientCore::broker_incarnation)
        .def_property_readonly("subscriptions", &PyClientCore::subscriptions);
}
