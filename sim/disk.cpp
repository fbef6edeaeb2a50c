// disk.cpp — the simulated disk's sync and crash (see disk.hpp).
#include "disk.hpp"

#include "check.hpp"
#include "log_format.hpp"

namespace memq::sim {

void SimDisk::apply(const storage::StorageWrite& write, std::string& file) {
    if (write.replace) {
        file.clear();
        holds_rot_ = false;
    }
    file += write.bytes;
}

std::uint64_t SimDisk::sync() {
    if (unsynced_.empty()) return 0;
    for (const storage::StorageWrite& write : unsynced_) apply(write, file_);
    const std::uint64_t last = unsynced_.back().seq;
    unsynced_.clear();
    return last;
}

std::string SimDisk::crash(Prng& prng, bool rot, Damage& damage) {
    std::string file = file_;
    const std::size_t whole = prng.below(unsynced_.size() + 1);
    for (std::size_t i = 0; i < whole; ++i) apply(unsynced_[i], file);
    if (whole < unsynced_.size() && !unsynced_[whole].replace) {
        const std::string& torn = unsynced_[whole].bytes;
        file.append(torn, 0, prng.below(torn.size() + 1));
    }
    unsynced_.clear();
    damage = Damage{};
    if (rot && file.size() > storage::kHeaderBytes) {
        // The records that another good record follows: where rot is detectable.
        struct Span {
            std::size_t offset, bytes;
            std::string topic;
            bool take;
        };
        std::vector<Span> records;
        std::string_view rest(file);
        rest.remove_prefix(storage::kHeaderBytes);
        std::size_t offset = storage::kHeaderBytes;
        storage::DecodedRecord decoded;
        while (storage::decode_record(rest, decoded)) {
            records.push_back(Span{offset, decoded.bytes, std::string(decoded.record.topic),
                                   decoded.record.kind == storage::RecordKind::take});
            offset += decoded.bytes;
            rest.remove_prefix(decoded.bytes);
        }
        if (records.size() >= 2) {
            const Span& hit = records[prng.below(records.size() - 1)];
            const std::size_t byte = hit.offset + prng.below(hit.bytes);
            file[byte] = static_cast<char>(file[byte] ^ (1 << prng.below(8)));
            damage = Damage{true, hit.topic, hit.take};
            holds_rot_ = true;
        }
    }
    file_ = file;
    return file;
}

void SimDisk::cut(std::size_t bytes) {
    MEMQ_CHECK(bytes <= file_.size());
    file_.resize(bytes);
}

}  // namespace memq::sim
