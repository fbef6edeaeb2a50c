// name_index_test.cpp — specifies memq::NameIndex (broker/core/name_index.hpp):
// entries found by name, made once, at stable addresses, iterated in the order
// they were made, with names the index owns; the table at most 3/4 full.
#include "name_index.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace {

struct Named {
    std::string_view name;
    int value = 0;
};
using Index = memq::NameIndex<Named>;

std::string name_of(int i) {
    std::string name = "t";
    name += std::to_string(i);  // (not "t" + ...: GCC 12's -Wrestrict false positive)
    return name;
}

TEST(NameIndex, StartsEmptyAndFindsNothing) {
    const Index index;
    EXPECT_EQ(index.size(), 0U);
    EXPECT_EQ(index.find("a"), nullptr);
}

TEST(NameIndex, FindOrCreateMakesAnEntryOnceAndFindReturnsIt) {
    Index index;
    Named& made = index.find_or_create("topic");
    made.value = 7;
    EXPECT_EQ(&index.find_or_create("topic"), &made);
    EXPECT_EQ(index.find("topic"), &made);
    EXPECT_EQ(index.size(), 1U);
    EXPECT_EQ(made.value, 7);
}

TEST(NameIndex, TheEntrysNameIsTheIndexsOwnCopy) {
    Index index;
    std::string name = "short-lived";
    Named& made = index.find_or_create(name);
    name.assign(name.size(), 'x');
    EXPECT_EQ(made.name, "short-lived");
    EXPECT_NE(made.name.data(), name.data());
}

TEST(NameIndex, TheEmptyNameIsANameLikeAnyOther) {
    Index index;
    Named& empty = index.find_or_create("");
    EXPECT_EQ(index.find(""), &empty);
    EXPECT_EQ(index.find("a"), nullptr);
}

TEST(NameIndex, ANameLongerThanANameChunkGetsAChunkOfItsOwn) {
    Index index;
    const std::string long_name(Index::kNameChunkBytesMax + 1, 'n');
    Named& before = index.find_or_create("before");
    Named& made = index.find_or_create(long_name);
    Named& after = index.find_or_create("after");
    EXPECT_EQ(made.name, long_name);
    EXPECT_EQ(before.name, "before");
    EXPECT_EQ(after.name, "after");
    EXPECT_EQ(index.find(long_name), &made);
}

// Many names: every chunk boundary of entries and names, and many doublings
// of the table, are crossed; every entry keeps its address and its name.
TEST(NameIndex, ManyEntriesKeepTheirAddressesNamesAndOrderOfCreation) {
    Index index;
    constexpr int kEntries = 3 * static_cast<int>(Index::kChunkEntriesMax) + 1;
    std::vector<Named*> made;
    for (int i = 0; i < kEntries; ++i) {
        Named& entry = index.find_or_create(name_of(i));
        entry.value = i;
        made.push_back(&entry);
    }
    ASSERT_EQ(index.size(), static_cast<std::size_t>(kEntries));
    for (int i = 0; i < kEntries; ++i) {
        ASSERT_EQ(index.find(name_of(i)), made[i]) << i;
        ASSERT_EQ(made[i]->name, name_of(i));
    }
    EXPECT_EQ(index.find(name_of(kEntries)), nullptr);
    int expected = 0;
    index.for_each([&](const Named& entry) { EXPECT_EQ(entry.value, expected++); });
    EXPECT_EQ(expected, kEntries);
}

// The load bound: 12 entries fit 16 slots (3/4), the 13th doubles the table.
TEST(NameIndex, TheTableGrowsPastThreeQuartersFull) {
    Index index;
    for (int i = 0; i < 12; ++i) index.find_or_create(name_of(i));
    EXPECT_EQ(index.slot_count(), Index::kFirstSlots);
    index.find_or_create("t12");
    EXPECT_EQ(index.slot_count(), 2 * Index::kFirstSlots);
}

TEST(NameIndex, ReserveMakesRoomSoThatCreatingThatManyDoesNotGrowTheTable) {
    Index index;
    index.reserve(1000);
    const std::size_t slots = index.slot_count();
    EXPECT_GE(slots * 3, 1000U * 4);
    for (int i = 0; i < 1000; ++i) index.find_or_create(name_of(i));
    EXPECT_EQ(index.slot_count(), slots);
}

TEST(NameIndex, FindingAnExistingNameCreatesNothing) {
    Index index;
    index.find_or_create("a");
    index.find_or_create("a");
    int count = 0;
    index.for_each([&](const Named&) { ++count; });
    EXPECT_EQ(count, 1);
}

}  // namespace
