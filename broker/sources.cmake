# broker/sources.cmake — the one list of the core's sources, shared by the main
# build (broker/CMakeLists.txt) and the standalone fuzz build (tests/fuzz), so
# that a file added to the core can't be missing from either.
set(MEMQ_PROTOCOL_SOURCES protocol.cpp flat_json.cpp command_scan.cpp frame.cpp)
set(MEMQ_BROKER_SOURCES topic_table.cpp broker.cpp)
