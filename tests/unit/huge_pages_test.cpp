// huge_pages_test.cpp — specifies tunables_with_huge_pages (broker/server/
// huge_pages.hpp): memqd adds glibc's huge-page tunable to GLIBC_TUNABLES,
// keeps what was there, and leaves an operator's own setting of it alone.
#include "huge_pages.hpp"

#include <gtest/gtest.h>

namespace {

using memq::tunables_with_huge_pages;

TEST(HugePageTunables, UnsetBecomesTheTunableAlone) {
    EXPECT_EQ(tunables_with_huge_pages(nullptr), "glibc.malloc.hugetlb=1");
}

TEST(HugePageTunables, EmptyBecomesTheTunableAlone) { EXPECT_EQ(tunables_with_huge_pages(""), "glibc.malloc.hugetlb=1"); }

TEST(HugePageTunables, OtherTunablesAreKeptAndItIsAppended) {
    EXPECT_EQ(tunables_with_huge_pages("glibc.malloc.arena_max=2"), "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
}

TEST(HugePageTunables, AnOperatorsOwnSettingStandsAndNothingIsExecuted) {
    EXPECT_EQ(tunables_with_huge_pages("glibc.malloc.hugetlb=0"), "");
    EXPECT_EQ(tunables_with_huge_pages("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2"), "");
}

TEST(HugePageTunables, ANameThatOnlyStartsLikeItIsAnotherTunable) {
    EXPECT_EQ(tunables_with_huge_pages("glibc.malloc.hugetlbx=1"), "glibc.malloc.hugetlbx=1:glibc.malloc.hugetlb=1");
}

}  // namespace
