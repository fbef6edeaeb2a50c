#!/usr/bin/env python3
"""check_docs.py: runs the shell transcripts and code snippets of memq's docs.

    .venv/bin/python scripts/check_docs.py [--build DIR] [--list] [DOC ...]

DOC defaults to README.md, client/README.md, docs/operations.md and
docs/testing.md. Every fenced block of a checked document must be preceded
by a marker saying what to do with it (an unmarked block fails the check):

    <!-- doc-test: MODE -->

MODE is one of:

- ``skip: REASON``: not run; the reason is required.
- ``transcript``: ``$ COMMAND`` lines are run with bash from the top of the
  tree; the lines after each, up to the next ``$``, are what it must print
  (stdout and stderr together). Expected lines are compared exactly, except
  that ``...`` inside a line matches any text (times, rates, ports) and a
  line that is just ``...`` matches any number of lines. ``$ nc HOST PORT``
  is played by the checker itself over a socket: the lines that carry
  ``"success"`` or ``"index"`` are memqd's, the others are typed.
- ``shell``: every line that is not blank or a comment is a command that
  must exit 0; its output is not compared.
- ``terminals``: every line is a terminal of its own, started in order.
  ``terminal N prints: TEXT`` in a line's comment says what terminal N must
  print; such a terminal is stopped once it has, and every other one must
  exit 0 by itself.
- ``daemons``: every line starts a memqd (or one that exits by itself, such
  as ``--help``); it must exit 0, or accept a connection on the port the line
  names and then exit 0 on SIGTERM.
- ``python``: run with this interpreter (the project venv's, so ``import
  memq`` is the installed package). The comment of a line that calls
  ``print(`` is what that print must write, in order.
- ``pytest``: written to a file and run with ``python -m pytest``; the
  ``broker`` fixture is the package's own.
- ``cpp``: a whole program; ``cpp-fragment``: statements, put into ``main``
  (``#include`` lines stay on top). Both are compiled against the installed
  SDK (``cmake --install BUILD`` into a temporary prefix, then
  ``find_package(memq)`` and ``memq::client``, as scripts/test-sdk.sh does)
  and run; ``// prints: TEXT`` comments say what must be printed, in order.

Ports: each document gets a memqd of its own, started by memq.testing on a
free port (``--port 0 --port-file``), that its blocks share in order, so a document
read top to bottom is checked as a reader would run it. In every block the
port ``7000`` (the one ./run.sh uses) is replaced by that memqd's port, and a
``build/bin/memq`` command without ``--port`` gets ``--port 7000`` first. In
a ``daemons`` block every port from 7000 to 7999 is replaced by a fresh free
port instead (those start servers of their own). ``build/bin/`` is DIR/bin.

Nothing waits a fixed time: every wait polls a condition with a deadline.
Exit status: 0 every block passed, 1 a block failed, 2 bad usage.
"""

import argparse
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from memq.testing import start_broker  # the package's own: run this with the project venv's python

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = ["README.md", "client/README.md", "docs/operations.md", "docs/testing.md"]
MARKER = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
MODES = {"skip", "transcript", "shell", "terminals", "daemons", "python", "pytest", "cpp", "cpp-fragment"}
DOC_PORT = "7000"
COMMAND_TIMEOUT_S = 300.0
WAIT_TIMEOUT_S = 20.0


class BlockFailed(Exception):
    pass


@dataclass
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    mode: str
    argument: str  # the skip reason
    text: str
    index: int = 0  # among the document's blocks
    binary: Path | None = field(default=None)  # a compiled C++ block

    @property
    def where(self):
        return f"{self.doc}:{self.line}"


def parse(doc, text):
    """The fenced blocks of a document, each with its marker; raises BlockFailed for an unmarked one."""
    blocks, lines, number = [], text.splitlines(), 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if not opening:
            number += 1
            continue
        start = number
        number += 1
        while number < len(lines) and not lines[number].startswith("```"):
            number += 1
        body = "\n".join(lines[start + 1:number]) + "\n"
        number += 1
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        marker = MARKER.match(lines[previous]) if previous >= 0 else None
        if not marker:
            raise BlockFailed(f"{doc}:{start + 1}: a fenced block without a <!-- doc-test: MODE --> marker before it")
        mode, _, argument = marker.group(1).partition(":")
        mode = mode.strip()
        if mode not in MODES:
            raise BlockFailed(f"{doc}:{start + 1}: unknown doc-test mode {mode!r} (one of {sorted(MODES)})")
        if mode == "skip" and not argument.strip():
            raise BlockFailed(f"{doc}:{start + 1}: 'skip' needs a reason: <!-- doc-test: skip: REASON -->")
        blocks.append(Block(doc, start + 1, mode, argument.strip(), body, len(blocks)))
    return blocks


# ---- ports and processes -------------------------------------------------------

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, what, process=None, timeout=WAIT_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not condition():
        if process is not None and process.poll() is not None and not condition():
            raise BlockFailed(f"{what}: the process exited with {process.returncode} first")
        if time.monotonic() > deadline:
            raise BlockFailed(f"{what}: not within {timeout} s")
        time.sleep(delay)  # polling a condition with a deadline, not a fixed wait
        delay = min(delay * 2, 0.05)


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def stop(process):
    """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def start_memqd(build):
    """The memqd a document's blocks run against: memq.testing's, on a free port."""
    try:
        return start_broker(memqd=str(build / "bin" / "memqd"))
    except RuntimeError as problem:
        raise BlockFailed(f"starting memqd: {problem}") from None


# ---- substitution --------------------------------------------------------------

MEMQ_TOOL = re.compile(r"\bbuild/bin/memq (?!.*--port)")


def for_doc_memqd(text, port):
    text = MEMQ_TOOL.sub(f"build/bin/memq --port {DOC_PORT} ", text)
    return re.sub(rf"\b{DOC_PORT}\b", str(port), text)


def with_build(command, build):
    return re.sub(r"(?<![\w/.])build/bin/", f"{build}/bin/", command)


# ---- comparing output ----------------------------------------------------------

def line_matches(expected, actual):
    if "..." not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, re.DOTALL) is not None


def lines_match(expected, actual):
    """Expected lines against actual ones; a line '...' matches any number of lines."""
    segments, current = [], []
    for line in expected:
        if line == "...":
            segments.append(current)
            current = []
        else:
            current.append(line)
    segments.append(current)

    def matches_at(segment, start):
        return start + len(segment) <= len(actual) and all(
            line_matches(want, actual[start + offset]) for offset, want in enumerate(segment))

    if len(segments) == 1:
        return len(actual) == len(segments[0]) and matches_at(segments[0], 0)
    first, middle, last = segments[0], segments[1:-1], segments[-1]
    end = len(actual) - len(last)
    if not matches_at(first, 0) or end < len(first) or not matches_at(last, end):
        return False
    position = len(first)
    for segment in middle:  # each as early as it fits: leaves the most room for the rest
        while position + len(segment) <= end and not matches_at(segment, position):
            position += 1
        if position + len(segment) > end:
            return False
        position += len(segment)
    return True


def compare(what, expected, actual):
    actual = [line.rstrip() for line in actual]
    expected = [line.rstrip() for line in expected]
    if not lines_match(expected, actual):
        raise BlockFailed(f"{what}: the output differs from the document.\n--- expected (the document):\n"
                          + "\n".join(expected) + "\n--- actual:\n" + "\n".join(actual))


def run(command, what, cwd=ROOT, timeout=COMMAND_TIMEOUT_S, **kwargs):
    try:
        result = subprocess.run(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise BlockFailed(f"{what}: still running after {timeout} s") from None
    if result.returncode != 0:
        raise BlockFailed(f"{what}: exited with {result.returncode}; output:\n{result.stdout}")
    return result.stdout


# ---- the modes -----------------------------------------------------------------

class Checker:
    def __init__(self, build, python, workdir):
        self.build = build
        self.python = python
        self.workdir = workdir
        self.sdk_prefix = None

    # transcript: "$ COMMAND" then what it prints
    def transcript(self, block, memqd):
        steps, current = [], None
        for line in block.text.splitlines():
            if line.startswith("$ "):
                current = (line[2:], [])
                steps.append(current)
            elif current is None:
                if line.strip():
                    raise BlockFailed(f"{block.where}: a transcript starts with a '$ COMMAND' line")
            else:
                current[1].append(line)
        for command, expected in steps:
            while expected and not expected[-1].strip():
                expected.pop()
            nc = re.fullmatch(r"nc (\S+) (\d+)", command.strip())
            if nc:
                self.nc_session(block, nc.group(1), memqd.port if nc.group(2) == DOC_PORT else int(nc.group(2)),
                                expected)
                continue
            shell = with_build(for_doc_memqd(command, memqd.port), self.build)
            output = run(["bash", "-c", shell], f"{block.where}: $ {command}")
            compare(f"{block.where}: $ {command}", expected, output.splitlines())

    def nc_session(self, block, host, port, lines):
        def from_memqd(line):
            return '"success"' in line or '"index"' in line

        with socket.create_connection((host, port), timeout=WAIT_TIMEOUT_S) as conn:
            reader = conn.makefile("rb")
            for line in lines:
                if not line.strip():
                    continue
                if from_memqd(line):
                    try:
                        got = reader.readline().decode("utf-8").rstrip("\r\n")
                    except socket.timeout:
                        raise BlockFailed(f"{block.where}: nc: memqd sent nothing where the document shows {line}") \
                            from None
                    if not line_matches(line.rstrip(), got):
                        raise BlockFailed(f"{block.where}: nc: memqd sent\n  {got}\nwhere the document shows\n  {line}")
                else:
                    conn.sendall(line.encode("utf-8") + b"\n")

    def shell(self, block, memqd):
        for line in block.text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            command = with_build(for_doc_memqd(line, memqd.port), self.build)
            output = self.workdir / f"shell-{block.index}.out"
            with open(output, "wb") as sink:  # may be large (--trace): kept on disk, shown only on failure
                try:
                    code = subprocess.run(["bash", "-c", command], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=sink,
                                          stderr=subprocess.STDOUT, timeout=COMMAND_TIMEOUT_S).returncode
                except subprocess.TimeoutExpired:
                    code = f"nothing (still running after {COMMAND_TIMEOUT_S} s)"
            if code != 0:
                tail = output.read_text(errors="replace").splitlines()[-40:]
                raise BlockFailed(f"{block.where}: {line.strip()}: exited with {code}; the end of its output:\n"
                                  + "\n".join(tail))

    def terminals(self, block, memqd):
        lines = [line for line in block.text.splitlines() if line.strip()]
        expected = {int(number): text.strip() for number, text in
                    re.findall(r"terminal (\d+) prints: (.*)$", block.text, re.MULTILINE)}
        processes, outputs = [], []
        try:
            for number, line in enumerate(lines, 1):
                out = self.workdir / f"terminal-{block.index}-{number}.out"
                outputs.append(out)
                with open(out, "wb") as sink:
                    processes.append(subprocess.Popen(
                        ["bash", "-c", with_build(for_doc_memqd(line, memqd.port), self.build)], cwd=ROOT,
                        stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT))
            for number, process in enumerate(processes, 1):
                if number in expected:
                    continue
                try:
                    code = process.wait(timeout=COMMAND_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    code = "nothing (still running)"
                if code != 0:
                    raise BlockFailed(f"{block.where}: terminal {number} ({lines[number - 1].strip()}) exited with "
                                      f"{code}: {outputs[number - 1].read_text()}")
            for number, text in expected.items():
                out = outputs[number - 1]
                try:
                    wait_for(lambda: text in out.read_text().splitlines(), f"terminal {number} printing {text!r}",
                             processes[number - 1])
                except BlockFailed as failure:
                    raise BlockFailed(f"{block.where}: {failure}; it printed:\n{out.read_text()}") from None
                compare(f"{block.where}: terminal {number}", [text], out.read_text().splitlines())
        finally:
            for process in processes:
                stop(process)

    def daemons(self, block, memqd):
        del memqd  # these start servers of their own
        for line in block.text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            ports = []

            def fresh_port(_):
                ports.append(free_port())
                return str(ports[-1])

            command = with_build(re.sub(r"\b7\d{3}\b", fresh_port, line), self.build)
            log = self.workdir / f"daemon-{block.index}.log"
            with open(log, "wb") as sink:
                process = subprocess.Popen(["bash", "-c", "exec " + command], cwd=ROOT, stdin=subprocess.DEVNULL,
                                           stdout=sink, stderr=subprocess.STDOUT)
            what = f"{block.where}: {line.strip()}"
            try:
                wait_for(lambda: process.poll() is not None or any(accepts(port) for port in ports),
                         f"{what}: exiting, or accepting connections on port {ports}")
            finally:
                code = stop(process)
            if code != 0:
                raise BlockFailed(f"{what}: exited with {code}; output:\n{log.read_text()}")

    def python_block(self, block, memqd):
        code = for_doc_memqd(block.text, memqd.port)
        expected = [line.split("#", 1)[1].strip() for line in code.splitlines()
                    if "print(" in line and "#" in line.split("print(", 1)[1]]
        path = self.workdir / f"snippet_{block.index}.py"
        path.write_text(code)
        output = run([self.python, str(path)], f"{block.where}: python", cwd=self.workdir)
        compare(f"{block.where}: python", expected, output.splitlines())

    def pytest_block(self, block, memqd):
        path = self.workdir / f"test_snippet_{block.index}.py"
        path.write_text(for_doc_memqd(block.text, memqd.port))
        output = run([self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path),
                      "--memqd", str(self.build / "bin" / "memqd")], f"{block.where}: pytest", cwd=self.workdir)
        if not re.search(r"\b\d+ passed\b", output) or re.search(r"\b(failed|error)", output):
            raise BlockFailed(f"{block.where}: pytest did not pass:\n{output}")

    # C++: every block of every document is compiled in one CMake project, once.
    def compile_cpp(self, blocks, ports):
        cpp = [block for block in blocks if block.mode in ("cpp", "cpp-fragment")]
        if not cpp:
            return
        prefix = self.workdir / "prefix"
        run(["cmake", "--install", str(self.build), "--prefix", str(prefix)], "installing the SDK")
        project = self.workdir / "snippets"
        project.mkdir()
        cmake = ["cmake_minimum_required(VERSION 3.20)", "project(doc_snippets CXX)",
                 "set(CMAKE_CXX_STANDARD 20)", "set(CMAKE_CXX_STANDARD_REQUIRED ON)", "find_package(memq REQUIRED)"]
        for number, block in enumerate(cpp):
            source = for_doc_memqd(block.text, ports[block.doc])
            if block.mode == "cpp-fragment":
                lines = source.splitlines()
                includes = [line for line in lines if line.startswith("#include")]
                body = [line for line in lines if not line.startswith("#include")]
                source = "\n".join(includes + ["#include <chrono>", "int main() {"] + body + ["}"]) + "\n"
            (project / f"snippet_{number}.cpp").write_text(f"// {block.where}\n" + source)
            cmake += [f"add_executable(snippet_{number} snippet_{number}.cpp)",
                      f"target_link_libraries(snippet_{number} PRIVATE memq::client)"]
            block.binary = project / "build" / f"snippet_{number}"
        (project / "CMakeLists.txt").write_text("\n".join(cmake) + "\n")
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        run(["cmake", "-S", str(project), "-B", str(project / "build"), *generator, "-DCMAKE_BUILD_TYPE=Release",
             f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"], "configuring the C++ snippets")
        run(["cmake", "--build", str(project / "build"), "-j2"], "compiling the C++ snippets against the installed SDK")

    def cpp_block(self, block, memqd):
        del memqd  # the port went in at compile time
        expected = re.findall(r"//\s*prints:\s*(.*?)\s*$", block.text, re.MULTILINE)
        output = run([str(block.binary)], f"{block.where}: the compiled snippet")
        compare(f"{block.where}: C++", expected, output.splitlines())


def main():
    parser = argparse.ArgumentParser(description="Runs the transcripts and snippets of memq's docs.")
    parser.add_argument("docs", nargs="*", default=DEFAULT_DOCS, help="documents (default: %(default)s)")
    parser.add_argument("--build", default="build", help="the build folder with bin/memqd (default: build)")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter for python blocks (default: this one)")
    parser.add_argument("--list", action="store_true", help="list the blocks and their modes, run nothing")
    options = parser.parse_args()
    build = (ROOT / options.build).resolve()
    started = time.monotonic()

    blocks = {}
    try:
        for doc in options.docs:
            blocks[doc] = parse(doc, (ROOT / doc).read_text())
    except (BlockFailed, OSError) as problem:
        print(f"check_docs: {problem}", file=sys.stderr)
        return 2 if isinstance(problem, OSError) else 1
    if options.list:
        for doc, found in blocks.items():
            for block in found:
                print(f"{block.where}: {block.mode}{': ' + block.argument if block.argument else ''}")
        return 0

    counts = {"run": 0, "skipped": 0}
    with tempfile.TemporaryDirectory(prefix="check_docs.") as temporary:
        workdir = Path(temporary)
        checker = Checker(build, options.python, workdir)
        servers = {}
        try:
            for doc in options.docs:
                servers[doc] = start_memqd(build)
            checker.compile_cpp([block for found in blocks.values() for block in found],
                                {doc: server.port for doc, server in servers.items()})
            for doc in options.docs:
                for block in blocks[doc]:
                    if block.mode == "skip":
                        counts["skipped"] += 1
                        continue
                    block_started = time.monotonic()
                    handler = {"transcript": checker.transcript, "shell": checker.shell,
                               "terminals": checker.terminals, "daemons": checker.daemons,
                               "python": checker.python_block, "pytest": checker.pytest_block,
                               "cpp": checker.cpp_block, "cpp-fragment": checker.cpp_block}[block.mode]
                    handler(block, servers[doc])
                    counts["run"] += 1
                    print(f"check_docs: ok   {block.where} ({block.mode}, {time.monotonic() - block_started:.2f} s)")
            for doc, server in servers.items():
                if (code := server.stop()) != 0:
                    raise BlockFailed(f"{doc}: its memqd exited with {code}")
        except BlockFailed as failure:
            print(f"check_docs: FAIL {failure}", file=sys.stderr)
            for server in servers.values():
                server.stop()
            return 1
    print(f"check_docs: {counts['run']} blocks run, {counts['skipped']} skipped (with a reason), "
          f"in {len(options.docs)} documents, {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
