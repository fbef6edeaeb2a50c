// name_index.hpp — owns NameIndex<Entry>: entries that are never removed,
// kept at stable addresses in the order they were made, and found by name
// through one flat open-addressing table.
//
// Why not std::unordered_map<std::string, Entry>: a recovery makes a million
// topics at start, and the map's node and key allocations and its two
// dependent loads per lookup were a third of that start (docs/architecture.md,
// "Durable topics", recovery). Here an entry costs no allocation of its own
// (entries and names are carved from chunks that grow geometrically), and a
// lookup reads one slot, then the entry only when the slot's hash matches.
//
// Rules:
// - Entry is default-constructible and has a std::string_view member `name`,
//   which the index sets to its own copy of the name: valid while the index
//   lives. An entry's address never changes; nothing is ever removed.
// - The table is a power of two in size, at most three quarters full, probed
//   linearly; it grows by doubling, re-placing slots by their stored hashes.
// - No IO, no global state; the iteration order is the order of creation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <string_view>
#include <type_traits>
#include <vector>

#include "check.hpp"

namespace memq {

template <typename Entry>
class NameIndex {
public:
    // Chunks of entries and of name bytes start small (an index of a few
    // names costs little) and double up to these sizes.
    static constexpr std::size_t kFirstChunkEntries = 16;
    static constexpr std::size_t kChunkEntriesMax = 4096;
    static constexpr std::size_t kFirstNameChunkBytes = 1024;
    static constexpr std::size_t kNameChunkBytesMax = 256 * 1024;
    static constexpr std::size_t kFirstSlots = 16;

    NameIndex() = default;
    NameIndex(const NameIndex&) = delete;
    NameIndex& operator=(const NameIndex&) = delete;

    std::size_t size() const { return size_; }

    Entry* find(std::string_view name) const {
        if (slots_.empty()) return nullptr;
        const Slot& slot = slots_[probe(name, hash_of(name))];
        return slot.entry;
    }

    Entry& find_or_create(std::string_view name) {
        if (slots_.empty() || (size_ + 1) * 4 > slots_.size() * 3) grow_to((size_ + 1) * 4 / 3 + 1);
        const std::size_t hash = hash_of(name);
        Slot& slot = slots_[probe(name, hash)];
        if (slot.entry != nullptr) return *slot.entry;
        Entry& entry = next_entry();
        entry.name = copy_name(name);
        slot = Slot{hash, &entry};
        ++size_;
        return entry;
    }

    // Room in the table for `entries` without growing it (entries and names
    // still come in chunks as they are made).
    void reserve(std::size_t entries) {
        if (entries * 4 > slots_.size() * 3) grow_to(entries * 4 / 3 + 1);
    }

    // Every entry, in the order they were made: on_entry(const Entry&).
    template <typename OnEntry>
    void for_each(OnEntry&& on_entry) const {
        visit(*this, on_entry);
    }
    template <typename OnEntry>
    void for_each(OnEntry&& on_entry) {
        visit(*this, on_entry);
    }

    // Slots in the table (for tests of its growth).
    std::size_t slot_count() const { return slots_.size(); }

private:
    struct Slot {
        std::size_t hash = 0;
        Entry* entry = nullptr;  // null: free
    };
    struct EntryChunk {
        std::unique_ptr<Entry[]> entries;
        std::size_t capacity = 0;
    };

    // The one walk over the chunks, for both for_each (Self: const or not).
    template <typename Self, typename OnEntry>
    static void visit(Self& self, OnEntry& on_entry) {
        using EntryRef = std::conditional_t<std::is_const_v<Self>, const Entry&, Entry&>;
        std::size_t left = self.size_;
        for (const EntryChunk& chunk : self.entry_chunks_) {
            const std::size_t used = std::min(left, chunk.capacity);
            for (std::size_t i = 0; i < used; ++i) on_entry(static_cast<EntryRef>(chunk.entries[i]));
            left -= used;
        }
    }

    static std::size_t hash_of(std::string_view name) { return std::hash<std::string_view>{}(name); }

    // The slot holding `name`, or the free slot where it belongs.
    std::size_t probe(std::string_view name, std::size_t hash) const {
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
            const Slot& slot = slots_[i];
            if (slot.entry == nullptr || (slot.hash == hash && slot.entry->name == name)) return i;
        }
    }

    void grow_to(std::size_t slots_wanted) {
        std::size_t count = std::max(kFirstSlots, slots_.size());
        while (count < slots_wanted) count *= 2;
        if (count == slots_.size()) return;
        std::vector<Slot> old(count);
        old.swap(slots_);
        const std::size_t mask = count - 1;
        for (const Slot& slot : old) {
            if (slot.entry == nullptr) continue;
            std::size_t i = slot.hash & mask;
            while (slots_[i].entry != nullptr) i = (i + 1) & mask;
            slots_[i] = slot;
        }
        MEMQ_CHECK(size_ * 4 <= slots_.size() * 3);
    }

    Entry& next_entry() {
        if (size_ == entries_made_) {
            const std::size_t capacity =
                entry_chunks_.empty() ? kFirstChunkEntries : std::min(kChunkEntriesMax, entry_chunks_.back().capacity * 2);
            entry_chunks_.push_back(EntryChunk{std::make_unique<Entry[]>(capacity), capacity});
            last_chunk_first_ = size_;
            entries_made_ += capacity;
        }
        MEMQ_CHECK(size_ >= last_chunk_first_ && size_ - last_chunk_first_ < entry_chunks_.back().capacity);
        return entry_chunks_.back().entries[size_ - last_chunk_first_];
    }

    std::string_view copy_name(std::string_view name) {
        if (names_.empty() || name.size() > name_room_) {
            const std::size_t next = names_.empty() ? kFirstNameChunkBytes : std::min(kNameChunkBytesMax, name_chunk_bytes_ * 2);
            name_chunk_bytes_ = std::max(next, name.size());
            names_.push_back(std::make_unique<char[]>(name_chunk_bytes_));
            name_room_ = name_chunk_bytes_;
        }
        char* const at = names_.back().get() + (name_chunk_bytes_ - name_room_);
        if (!name.empty()) std::memcpy(at, name.data(), name.size());
        name_room_ -= name.size();
        return {at, name.size()};
    }

    std::vector<Slot> slots_;
    std::vector<EntryChunk> entry_chunks_;
    std::size_t entries_made_ = 0;      // the chunks' capacities, summed
    std::size_t last_chunk_first_ = 0;  // the ordinal of the last chunk's first entry
    std::size_t size_ = 0;
    std::vector<std::unique_ptr<char[]>> names_;
    std::size_t name_chunk_bytes_ = 0;  // the size of names_.back()
    std::size_t name_room_ = 0;         // unused bytes at its end
};

}  // namespace memq
