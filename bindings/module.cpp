// module.cpp — memq._memq: pybind11 bindings of memq::Client and memq::Message
// (and, from core_binding.cpp, the ClientCore that memq.aio drives).
//
// Rules: every call that can wait releases the GIL and takes the client's own
// mutex, so Python threads may share one Client (calls are serialized). C++
// exceptions become the Python classes of memq/_errors.py. Timeouts are
// seconds (float) in Python, None meaning the client's default. Callbacks
// (on_reset) never run inside a C++ call: the C++ side queues what is due,
// and the Python method that received it calls them once the call is over,
// with the GIL held and no lock taken, on the calling thread.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "client.hpp"

namespace py = pybind11;

// core_binding.cpp: memq._memq.ClientCore, the engine of memq.aio.
void bind_client_core(py::module_& module);

namespace {

using Millis = std::chrono::milliseconds;

memq::Delivery parse_delivery(const std::string& delivery) {
    if (delivery == "all") return memq::Delivery::all;
    if (delivery == "one") return memq::Delivery::one;
    throw py::value_error("delivery must be \"all\" or \"one\", not \"" + delivery + "\"");
}

const char* delivery_name(memq::Delivery delivery) { return delivery == memq::Delivery::one ? "one" : "all"; }

Millis to_millis(double seconds) {
    if (!(seconds >= 0) || !std::isfinite(seconds)) throw py::value_error("timeout must be a finite number >= 0");
    return Millis(static_cast<Millis::rep>(std::ceil(seconds * 1000.0)));
}

py::dict message_as_dict(const memq::Message& message) {
    py::dict result;
    result["command"] = "send";
    result["topic"] = message.topic;
    result["msg"] = message.msg;
    result["delivery"] = delivery_name(message.delivery);
    if (message.cache.has_value()) result["cache"] = *message.cache;
    result["index"] = message.index;
    return result;
}

// A Message built in Python; its raw is the JSON object it stands for.
memq::Message make_message(std::string topic, std::string msg, std::int64_t index, const std::string& delivery,
                           std::optional<bool> cache) {
    memq::Message message;
    message.topic = std::move(topic);
    message.msg = std::move(msg);
    message.index = index;
    message.delivery = parse_delivery(delivery);
    message.cache = cache;
    py::object dumps = py::module_::import("json").attr("dumps");
    message.raw = dumps(message_as_dict(message), py::arg("ensure_ascii") = false).cast<std::string>();
    return message;
}

bool same_message(const memq::Message& a, const memq::Message& b) {
    return a.topic == b.topic && a.msg == b.msg && a.index == b.index && a.delivery == b.delivery &&
           a.cache == b.cache;
}

bool same_reset(const memq::Reset& a, const memq::Reset& b) {
    return a.topic == b.topic && a.last_index == b.last_index;
}

// __eq__ (equal = true) or __ne__ of a value type T compared by `same`;
// NotImplemented for any other type, so that Python tries the other operand.
template <typename T, bool (*same)(const T&, const T&), bool equal>
py::object value_comparison(const T& self, const py::object& other) {
    if (!py::isinstance<T>(other)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
    return py::bool_(same(self, other.cast<const T&>()) == equal);
}

// A path argument (str or os.PathLike) as a string; None: empty.
std::string path_argument(const py::object& path) {
    if (path.is_none()) return {};
    return py::module_::import("os").attr("fspath")(path).cast<std::string>();
}

// The keyword arguments tls, tls_ca, tls_cert, tls_key, tls_server_name as TlsOptions.
memq::TlsOptions tls_arguments(bool tls, const py::object& ca, const py::object& cert, const py::object& key,
                               const std::optional<std::string>& server_name) {
    memq::TlsOptions options;
    options.tls = tls;
    options.tls_ca_file = path_argument(ca);
    options.tls_cert_file = path_argument(cert);
    options.tls_key_file = path_argument(key);
    options.tls_server_name = server_name.value_or("");
    const bool any_file = !options.tls_ca_file.empty() || !options.tls_cert_file.empty() ||
                          !options.tls_key_file.empty() || !options.tls_server_name.empty();
    if (any_file && !tls) throw py::value_error("tls_ca, tls_cert, tls_key and tls_server_name need tls=True");
    return options;
}

// Owns a Client and serializes calls to it; the Python object is this.
class PyClient {
public:
    PyClient(const std::string& host, std::uint16_t port, double timeout, bool reconnect, py::object on_reset,
             const memq::TlsOptions& tls, std::size_t max_inbox_messages)
        : host_(host), port_(port), timeout_(to_millis(timeout)), on_reset_(std::move(on_reset)) {
        if (!on_reset_.is_none() && !PyCallable_Check(on_reset_.ptr())) {
            throw py::type_error("on_reset must be callable or None");
        }
        if (max_inbox_messages == 0) throw py::value_error("max_inbox_messages must be at least 1");
        memq::ClientOptions options;
        static_cast<memq::TlsOptions&>(options) = tls;
        options.reconnect = reconnect;
        options.max_inbox_messages = max_inbox_messages;
        options.connect_timeout = timeout_;
        if (!on_reset_.is_none()) {
            options.on_reset = [this](const memq::Reset& reset) {  // inside a call: GIL released
                std::lock_guard lock(due_mutex_);
                resets_due_.push_back(reset);
            };
        }
        client_ = memq::Client(options);
        py::gil_scoped_release release;
        client_.connect(host, port, timeout_);
    }

    // Calls on_reset for every reset received by the calls so far; with the GIL.
    // An exception it raises goes to sys.unraisablehook, so that the call's
    // own result (a message taken from the inbox) is never lost to it.
    void run_callbacks() {
        for (;;) {
            memq::Reset reset;
            {
                std::lock_guard lock(due_mutex_);
                if (resets_due_.empty()) return;
                reset = std::move(resets_due_.front());
                resets_due_.pop_front();
            }
            try {
                on_reset_(reset);
            } catch (py::error_already_set& error) {
                error.discard_as_unraisable("memq.Client on_reset callback");
            }
        }
    }

    void subscribe(const std::string& topic, std::optional<std::int64_t> last_seen, std::optional<bool> cache,
                   std::optional<double> timeout) {
        const Millis wait = effective(timeout);
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        client_.subscribe(topic, last_seen, cache, wait);
    }

    void unsubscribe(const std::string& topic, std::optional<double> timeout) {
        const Millis wait = effective(timeout);
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        client_.unsubscribe(topic, wait);
    }

    void send(const std::string& topic, const std::string& msg, const std::string& delivery,
              std::optional<bool> cache, std::optional<double> timeout) {
        const memq::Delivery mode = parse_delivery(delivery);
        const Millis wait = effective(timeout);
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        client_.send(topic, msg, mode, cache, wait);
    }

    void publish(const std::string& topic, const std::string& msg, const std::string& delivery,
                 std::optional<bool> cache) {
        const memq::Delivery mode = parse_delivery(delivery);
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        client_.publish(topic, msg, mode, cache);
    }

    void flush(std::optional<double> timeout) {
        const Millis wait = effective(timeout);
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        client_.flush(wait);
    }

    std::optional<memq::Message> receive(std::optional<double> timeout) {
        const Millis wait = effective(timeout);
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        return client_.receive(wait);
    }

    // Blocks until a message comes, waking every 100 ms to let Python handle
    // signals (Ctrl-C); ends the iteration when the connection is gone.
    memq::Message next_message() {
        for (;;) {
            std::optional<memq::Message> message;
            try {
                py::gil_scoped_release release;
                std::lock_guard lock(mutex_);
                message = client_.receive(Millis(100));
            } catch (const memq::ConnectionError&) {
                throw py::stop_iteration();
            }
            if (message) return std::move(*message);
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        }
    }

    void send_raw(py::object data, bool expect_reply) {
        std::string bytes;
        if (py::isinstance<py::bytes>(data)) {
            bytes = data.cast<std::string>();
        } else if (py::isinstance<py::str>(data)) {
            bytes = data.cast<std::string>();  // UTF-8
        } else {
            throw py::type_error("send_raw takes bytes or str");
        }
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        client_.send_raw(bytes, expect_reply);
    }

    py::object next_reply(std::optional<double> timeout) {
        const Millis wait = effective(timeout);
        memq::Reply reply;
        {
            py::gil_scoped_release release;
            std::lock_guard lock(mutex_);
            reply = client_.next_reply(wait);
        }
        if (!reply.raw.empty()) return py::module_::import("json").attr("loads")(reply.raw);  // every key
        py::dict result;
        result["success"] = reply.success;
        if (!reply.success) result["reason"] = reply.reason;
        return result;
    }

    void close() {
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        client_.close();
    }

    bool connected() {
        std::lock_guard lock(mutex_);
        return client_.connected();
    }
    std::size_t unacknowledged() {
        std::lock_guard lock(mutex_);
        return client_.unacknowledged();
    }
    std::size_t inbox_size() {
        std::lock_guard lock(mutex_);
        return client_.inbox_size();
    }
    std::uint64_t gap_count() {
        std::lock_guard lock(mutex_);
        return client_.gap_count();
    }
    std::uint64_t reconnect_count() {
        std::lock_guard lock(mutex_);
        return client_.reconnect_count();
    }
    std::uint64_t reset_count() {
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        return client_.reset_count();
    }
    std::vector<memq::Reset> take_resets() {
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        return client_.take_resets();
    }
    std::optional<std::string> broker_incarnation() {
        py::gil_scoped_release release;
        std::lock_guard lock(mutex_);
        return client_.broker_incarnation(timeout_);
    }
    py::list take_gaps() {
        std::vector<memq::Gap> gaps;
        {
            std::lock_guard lock(mutex_);
            gaps = client_.take_gaps();
        }
        py::list result;
        for (const memq::Gap& gap : gaps) result.append(py::make_tuple(gap.topic, gap.expected_index, gap.got_index));
        return result;
    }
    double timeout() const { return static_cast<double>(timeout_.count()) / 1000.0; }
    // A connection, not a value: the <...> form, and no mutex (it must not wait).
    std::string repr() const {
        return "<memq.Client host=" + py::repr(py::str(host_)).cast<std::string>() +
               " port=" + std::to_string(port_) + " timeout=" + py::repr(py::float_(timeout())).cast<std::string>() +
               ">";
    }

private:
    Millis effective(std::optional<double> timeout) const { return timeout ? to_millis(*timeout) : timeout_; }

    std::string host_;
    std::uint16_t port_;
    Millis timeout_;
    py::object on_reset_;
    std::mutex due_mutex_;  // guards resets_due_ only: taken inside calls, and with the GIL
    std::deque<memq::Reset> resets_due_;
    std::mutex mutex_;
    memq::Client client_;
};

// A PyClient method that may receive (and so owe callbacks): runs it, then
// the callbacks due. When it raises, they wait for the next such call.
template <typename R, typename... Args>
auto with_callbacks(R (PyClient::*method)(Args...)) {
    return [method](PyClient& self, Args... args) -> R {
        if constexpr (std::is_void_v<R>) {
            (self.*method)(std::forward<Args>(args)...);
            self.run_callbacks();
        } else {
            R result = (self.*method)(std::forward<Args>(args)...);
            self.run_callbacks();
            return result;
        }
    };
}

// Raises errors_module.<name>(message, *extra) as the current Python error.
void raise_as(const char* name, const std::string& message, py::object extra = py::none()) {
    py::object errors = py::module_::import("memq._errors");
    py::object type = errors.attr(name);
    py::tuple arguments = extra.is_none() ? py::make_tuple(message) : py::make_tuple(message, extra);
    PyErr_SetObject(type.ptr(), arguments.ptr());
}

}  // namespace

PYBIND11_MODULE(_memq, module) {
    module.doc() = "Native core of the memq client (use the memq package)";
    bind_client_core(module);

    py::register_exception_translator([](std::exception_ptr pending) {
        try {
            if (pending) std::rethrow_exception(pending);
        } catch (const memq::BrokerError& error) {
            raise_as("BrokerError", error.what(), py::str(error.reason()));
        } catch (const memq::Timeout& error) {
            raise_as("Timeout", error.what());
        } catch (const memq::TlsError& error) {
            raise_as("TlsError", error.what());
        } catch (const memq::ConnectionError& error) {
            raise_as("ConnectionError", error.what());
        } catch (const memq::ProtocolViolation& error) {
            raise_as("ProtocolViolation", error.what());
        } catch (const memq::InboxFull& error) {
            raise_as("InboxFull", error.what());
        } catch (const memq::Error& error) {
            raise_as("Error", error.what());
        }
    });

    py::class_<memq::Message>(module, "Message")
        .def(py::init(&make_message), py::arg("topic"), py::arg("msg"), py::arg("index"), py::arg("delivery") = "all",
             py::arg("cache") = py::none())
        .def_readonly("topic", &memq::Message::topic)
        .def_property_readonly("msg", [](const memq::Message& m) { return m.msg; })
        .def_readonly("index", &memq::Message::index)
        .def_property_readonly("delivery", [](const memq::Message& m) { return delivery_name(m.delivery); })
        .def_readonly("cache", &memq::Message::cache)
        .def_readonly("raw", &memq::Message::raw)
        .def("as_dict", &message_as_dict)
        // A value: equal when the decoded fields are (raw, the wire text, is not
        // compared); hashable, being immutable, with a hash consistent with ==;
        // any other type gets NotImplemented, so m == None is False.
        .def("__eq__", value_comparison<memq::Message, same_message, true>)
        .def("__ne__", value_comparison<memq::Message, same_message, false>)
        .def("__hash__",
             [](const memq::Message& m) {
                 return py::hash(py::make_tuple(m.topic, py::str(m.msg), m.index, delivery_name(m.delivery), m.cache));
             })
        // Shows every compared field as a constructor call: eval(repr(m)) == m.
        .def("__repr__", [](const memq::Message& m) {
            return "Message(topic=" + py::repr(py::str(m.topic)).cast<std::string>() +
                   ", msg=" + py::repr(py::str(m.msg)).cast<std::string>() + ", index=" + std::to_string(m.index) +
                   ", delivery='" + delivery_name(m.delivery) +
                   "', cache=" + (m.cache ? (*m.cache ? "True" : "False") : "None") + ")";
        });

    py::class_<memq::Reset>(module, "Reset")
        .def(py::init([](std::string topic, std::int64_t last_index) { return memq::Reset{std::move(topic), last_index}; }),
             py::arg("topic"), py::arg("last_index"))
        .def_readonly("topic", &memq::Reset::topic)
        .def_readonly("last_index", &memq::Reset::last_index)
        // A value, like Message: ==, != and hash over both fields; NotImplemented for other types.
        .def("__eq__", value_comparison<memq::Reset, same_reset, true>)
        .def("__ne__", value_comparison<memq::Reset, same_reset, false>)
        .def("__hash__", [](const memq::Reset& r) { return py::hash(py::make_tuple(r.topic, r.last_index)); })
        .def("__repr__", [](const memq::Reset& r) {
            return "Reset(topic=" + py::repr(py::str(r.topic)).cast<std::string>() +
                   ", last_index=" + std::to_string(r.last_index) + ")";
        });

    py::class_<PyClient>(module, "Client")
        .def(py::init([](const std::string& host, std::uint16_t port, double timeout, bool reconnect,
                         py::object on_reset, bool tls, const py::object& tls_ca, const py::object& tls_cert,
                         const py::object& tls_key, const std::optional<std::string>& tls_server_name,
                         std::size_t max_inbox_messages) {
                 return std::make_unique<PyClient>(host, port, timeout, reconnect, std::move(on_reset),
                                                   tls_arguments(tls, tls_ca, tls_cert, tls_key, tls_server_name),
                                                   max_inbox_messages);
             }),
             py::arg("host") = "127.0.0.1", py::arg("port") = 7000, py::arg("timeout") = 10.0,
             py::arg("reconnect") = false, py::arg("on_reset") = py::none(), py::kw_only(), py::arg("tls") = false,
             py::arg("tls_ca") = py::none(), py::arg("tls_cert") = py::none(), py::arg("tls_key") = py::none(),
             py::arg("tls_server_name") = py::none(), py::arg("max_inbox_messages") = memq::ClientOptions{}.max_inbox_messages)
        .def("subscribe", with_callbacks(&PyClient::subscribe), py::arg("topic"), py::arg("last_seen") = py::none(),
             py::arg("cache") = py::none(), py::arg("timeout") = py::none())
        .def("unsubscribe", with_callbacks(&PyClient::unsubscribe), py::arg("topic"), py::arg("timeout") = py::none())
        .def("send", with_callbacks(&PyClient::send), py::arg("topic"), py::arg("msg"), py::arg("delivery") = "all",
             py::arg("cache") = py::none(), py::arg("timeout") = py::none())
        .def("publish", with_callbacks(&PyClient::publish), py::arg("topic"), py::arg("msg"), py::arg("delivery") = "all",
             py::arg("cache") = py::none())
        .def("flush", with_callbacks(&PyClient::flush), py::arg("timeout") = py::none())
        .def("receive", with_callbacks(&PyClient::receive), py::arg("timeout") = py::none())
        .def("send_raw", with_callbacks(&PyClient::send_raw), py::arg("data"), py::arg("expect_reply") = true)
        .def("next_reply", with_callbacks(&PyClient::next_reply), py::arg("timeout") = py::none())
        .def("close", &PyClient::close)
        .def("take_gaps", &PyClient::take_gaps)
        .def("take_resets", &PyClient::take_resets)
        .def_property_readonly("reset_count", &PyClient::reset_count)
        .def_property_readonly("broker_incarnation", with_callbacks(&PyClient::broker_incarnation))
        .def_property_readonly("connected", &PyClient::connected)
        .def_property_readonly("unacknowledged", &PyClient::unacknowledged)
        .def_property_readonly("inbox_size", &PyClient::inbox_size)
        .def_property_readonly("gap_count", &PyClient::gap_count)
        .def_property_readonly("reconnect_count", &PyClient::reconnect_count)
        .def_property_readonly("timeout", &PyClient::timeout)
        // Client keeps object's == and hash (identity): it is a connection.
        .def("__repr__", &PyClient::repr)
        .def("__iter__", [](py::object self) { return self; })
        .def("__next__", with_callbacks(&PyClient::next_message))
        .def("__enter__", [](py::object self) { return self; })
        .def("__exit__", [](PyClient& self, py::args) { self.close(); });
}
