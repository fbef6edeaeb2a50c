// tests/client_lines.hpp — the client → server line of a command as memq's
// clients write it, from ClientCore's encoders (the one encoder of these
// lines), for the suites that feed the broker's parser. Needs memq_client_core.
#pragma once

#include <optional>
#include <string>

#include "client_core.hpp"
#include "protocol.hpp"

namespace memq::testing {

// The defaults (last_seen -1, cache true) are left out, as a client that
// gives neither writes the line.
inline std::string client_line(const Subscribe& command) {
    ClientCore client;
    client.subscribe(command.topic,
                     command.last_seen == -1 ? std::nullopt : std::optional<std::int64_t>(command.last_seen),
                     command.cache ? std::nullopt : std::optional<bool>(false));
    return std::string(client.output());
}

inline std::string client_line(const Unsubscribe& command) {
    ClientCore client;
    client.unsubscribe(command.topic);
    return std::string(client.output());
}

inline std::string client_line(const Send& command) {
    ClientCore client;
    client.send(command.topic, command.msg, command.delivery, command.cache);
    return std::string(client.output());
}

}  // namespace memq::testing
