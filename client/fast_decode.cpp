// fast_decode.cpp — decodes a delivered message of the common shape with the
// shared flat-object scanner (broker/flat_json.hpp); unknown keys are skipped.
#include "fast_decode.hpp"

#include <array>

#include "flat_json.hpp"

namespace memq::detail {

bool fast_decode_message(std::string_view line, Message& message) {
    Field command, topic, msg, delivery, index, cache;
    const std::array<FieldSlot, 6> slots{{{"command", &command},
                                          {"topic", &topic},
                                          {"msg", &msg},
                                          {"delivery", &delivery},
                                          {"index", &index},
                                          {"cache", &cache}}};
    if (!scan_flat_object(line, slots, UnknownKeys::skip)) return false;
    using Kind = Field::Kind;
    if (!command.is(Kind::string) || command.text != "send" || !topic.is(Kind::string) || !msg.is(Kind::string) ||
        !delivery.is(Kind::string) || !index.is(Kind::integer)) {
        return false;
    }
    if (delivery.text == "all") {
        message.delivery = Delivery::all;
    } else if (delivery.text == "one") {
        message.delivery = Delivery::one;
    } else {
        return false;
    }
    if (cache.is(Kind::boolean)) {
        message.cache = cache.boolean;
    } else if (cache.is(Kind::absent)) {
        message.cache.reset();
    } else {
        return false;
    }
    message.topic = std::move(topic.text);
    message.msg = std::move(msg.text);
    message.index = index.integer;
    return true;
}

}  // namespace memq::detail
