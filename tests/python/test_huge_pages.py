"""memqd puts its heap on transparent huge pages (broker/server/huge_pages.hpp):
it executes itself once more with GLIBC_TUNABLES=glibc.malloc.hugetlb=1,
keeping its pid, unless told not to (--no-huge-pages) or GLIBC_TUNABLES
already names that tunable. What is checked is what the kernel says of the
running memqd: its heap is advised for huge pages ("hg" among the [heap]
mapping's VmFlags in /proc/PID/smaps, which glibc sets under the tunable),
whatever the machine's THP mode; and that it serves as before.
"""

import os
import signal

import pytest

from durable_memqd import DurableMemqd, memqd_path

pytestmark = pytest.mark.memqd_only

TUNABLE = "glibc.malloc.hugetlb"


def heap_advised_for_huge_pages(pid):
    """Whether the process's [heap] mapping carries MADV_HUGEPAGE ("hg")."""
    in_heap = False
    with open(f"/proc/{pid}/smaps") as handle:
        for line in handle:
            fields = line.split()
            if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's first line
                in_heap = fields[-1] == "[heap]"
            elif in_heap and line.startswith("VmFlags:"):
                return "hg" in fields[1:]
    raise AssertionError(f"memqd {pid} has no [heap] mapping")


def initial_environment_text(pid):
    with open(f"/proc/{pid}/environ", "rb") as handle:
        return handle.read()


@pytest.fixture
def start(request, tmp_path):
    """start(*args, env=None) -> DurableMemqd with a data dir, stopped by pid after the test."""
    started = []

    def make(*args, env=None):
        workdir = tmp_path / f"memqd-{len(started)}"
        workdir.mkdir()
        memqd = DurableMemqd(memqd_path(request.config), tmp_path / f"data-{len(started)}", workdir, args, env=env)
        started.append(memqd)
        return memqd

    yield make
    for memqd in started:
        memqd.end(signal.SIGKILL)


def environment_without_tunables():
    return {name: value for name, value in os.environ.items() if name != "GLIBC_TUNABLES"}


def assert_serves(memqd):
    with memqd.connect() as client:
        assert client.send("t", "m") == {"success": True}


def test_by_default_memqd_runs_with_its_heap_advised_for_huge_pages(start):
    memqd = start(env=environment_without_tunables())
    assert heap_advised_for_huge_pages(memqd.pid)
    assert_serves(memqd)


def test_the_re_executed_memqd_keeps_its_name(start):
    memqd = start(env=environment_without_tunables())
    with open(f"/proc/{memqd.pid}/comm") as handle:
        assert handle.read().strip() == "memqd"  # what ps, top and pgrep show


def test_other_tunables_are_kept_beside_it(start):
    memqd = start(env={**environment_without_tunables(), "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert heap_advised_for_huge_pages(memqd.pid)
    assert b"GLIBC_TUNABLES=glibc.malloc.arena_max=2" in initial_environment_text(memqd.pid)
    assert_serves(memqd)


def test_no_huge_pages_leaves_the_heap_on_small_pages_and_the_environment_as_it_was(start):
    memqd = start("--no-huge-pages", env=environment_without_tunables())
    assert not heap_advised_for_huge_pages(memqd.pid)
    assert b"GLIBC_TUNABLES" not in initial_environment_text(memqd.pid)
    assert_serves(memqd)


def test_an_operators_own_setting_of_the_tunable_stands(start):
    memqd = start(env={**environment_without_tunables(), "GLIBC_TUNABLES": f"{TUNABLE}=0"})
    assert not heap_advised_for_huge_pages(memqd.pid)
    assert_serves(memqd)
