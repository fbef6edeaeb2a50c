# broker/sources.cmake — the one list of the wire library's, the storage
# codec's and the core's sources, relative to broker/, shared by the main
# build (broker/CMakeLists.txt) and the standalone fuzz build (tests/fuzz), so
# that a file added to either can't be missing from the other.
set(MEMQ_WIRE_SOURCES wire/protocol.cpp wire/json_cursor.cpp)
set(MEMQ_STORAGE_SOURCES storage/crc32c.cpp storage/log_format.cpp)
set(MEMQ_CORE_SOURCES core/command_parser.cpp core/command_scan.cpp core/frame.cpp
    core/topic_table.cpp core/broker.cpp)
