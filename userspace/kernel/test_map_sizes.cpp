#include "kernel/test_map_sizes.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "diskwatch/abi.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

// The variable's value as a positive integer; nullopt-like 0 when unset.
bool read_size(const char *name, uint64_t *value, std::string *error)
{
    const char *text = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read once at start, before threads
    *value = 0;
    if (!text)
        return true;
    const char *end = text + std::strlen(text);
    auto [stop, ec] = std::from_chars(text, end, *value);
    if (ec != std::errc() || stop != end || *value == 0) {
        *error = std::string(name) + "=" + text + ": not a positive integer";
        return false;
    }
    return true;
}

}  // namespace

bool apply_test_map_sizes(bpf_map *writers, bpf_map *events, std::vector<std::string> *applied, std::string *error)
{
    uint64_t writers_max = 0, events_bytes = 0;
    if (!read_size("DISKWATCH_TEST_WRITERS_MAX", &writers_max, error) ||
        !read_size("DISKWATCH_TEST_EVENTS_BYTES", &events_bytes, error))
        return false;
    if (writers_max > DW_WRITERS_MAX) {
        *error = "DISKWATCH_TEST_WRITERS_MAX=" + std::to_string(writers_max) + ": at most " +
                 std::to_string(DW_WRITERS_MAX) + " (it can only shrink the writer map)";
        return false;
    }
    const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    if (events_bytes != 0 && ((events_bytes & (events_bytes - 1)) != 0 || events_bytes < page ||
                              events_bytes > DW_EVENTS_RINGBUF_BYTES)) {
        *error = "DISKWATCH_TEST_EVENTS_BYTES=" + std::to_string(events_bytes) + ": must be a power of two from " +
                 std::to_string(page) + " to " + std::to_string(DW_EVENTS_RINGBUF_BYTES);
        return false;
    }
    if (writers_max != 0) {
        if (int err = bpf_map__set_max_entries(writers, static_cast<uint32_t>(writers_max))) {
            *error = "resizing the writer map: " + errno_text(-err);
            return false;
        }
        applied->push_back("writer map shrunk to " + std::to_string(writers_max) +
                           " entries (DISKWATCH_TEST_WRITERS_MAX, for tests only)");
    }
    if (events_bytes != 0) {
        if (int err = bpf_map__set_max_entries(events, static_cast<uint32_t>(events_bytes))) {
            *error = "resizing the event ring buffer: " + errno_text(-err);
            return false;
        }
        applied->push_back("event ring buffer shrunk to " + std::to_string(events_bytes) +
                           " bytes (DISKWATCH_TEST_EVENTS_BYTES, for tests only)");
    }
    return true;
}

}  // namespace diskwatch
