// The drop reasons: the one table of what the BPF side could not count
// (DW_ERR_* of include/diskwatch/abi.h), its names and words. Every listing of
// drops iterates kDropReasons: the reports' JSON `drops`, `status`, the
// ebpf_diskwatch_bpf_drops_total metric, the text view, the live view and the
// agent's warnings. A reason added here shows everywhere; one missing from the
// table fails the build (the static_asserts below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "diskwatch/abi.h"

namespace diskwatch {

// Cumulative counts since start, one per reason (one per row of kDropReasons).
struct DropCounters {
    uint64_t writers_map_full = 0;
    uint64_t ringbuf_full = 0;
    uint64_t file_lookup = 0;
    uint64_t pairing_map_full = 0;
    uint64_t aio_events_skipped = 0;  // AIO completions beyond what one io_getevents run reads
    uint64_t aio_event_read = 0;      // AIO completions or iocbs that could not be read
    uint64_t rate_bucket_full = 0;    // writes a rate-alarm bucket could not be made for (agent)
    uint64_t throttle_not_stopped = 0;  // writes over a throttle's allowance whose writer could not be stopped (agent)
};

// Views that show a reason besides the JSON ones (top --json's and status's
// `drops`, the metric), which always show every reason.
enum DropView : unsigned {
    kDropViewText = 1u << 0,     // top's text view: "dropped: name=N ..." (the non-zero ones)
    kDropViewLive = 1u << 1,     // the live view's bottom line: "drops: label N ..." (the non-zero ones)
    kDropViewWarning = 1u << 2,  // an agent.warning when the count grew
    kDropViewAll = kDropViewText | kDropViewLive | kDropViewWarning,
};

struct DropReason {
    // The key in `drops` (docs/top-json.md, docs/control.md) and the `reason`
    // label of ebpf_diskwatch_bpf_drops_total (docs/metrics.md): contracts.
    std::string_view name;
    // Bits (1u << DW_ERR_*) of the kernel's counters summed into this one.
    uint32_t dw_errors;
    unsigned views;  // DropView bits (here, next to dw_errors: no padding)
    uint64_t DropCounters::*counter;
    // The live view's label: its bottom line has little room.
    std::string_view label;
    // What was lost, in words: the agent.warning's `warning`.
    std::string_view help;
};

constexpr uint32_t dw_error_bit(uint32_t dw_err)
{
    return 1u << dw_err;
}

// Every reason in every view: a drop anywhere is said everywhere (none lacks
// the room: the text and live views list the non-zero ones only).
inline constexpr DropReason kDropReasons[] = {
    {"writers_map_full", dw_error_bit(DW_ERR_WRITERS_MAP_FULL), kDropViewAll, &DropCounters::writers_map_full, "map",
     "kernel writer map full: writes not attributed"},
    {"ringbuf_full", dw_error_bit(DW_ERR_RINGBUF_FULL), kDropViewAll, &DropCounters::ringbuf_full, "ring",
     "ring buffer full: lifecycle or alarm records lost"},
    {"file_lookup", dw_error_bit(DW_ERR_FILE_LOOKUP), kDropViewAll, &DropCounters::file_lookup, "lookup",
     "fd to file lookup failed after a write: writes not attributed to their file's device"},
    {"pairing_map_full", dw_error_bit(DW_ERR_PAIRING_MAP_FULL), kDropViewAll, &DropCounters::pairing_map_full, "pairing",
     "tracepoint pairing map full: writes not counted"},
    {"aio_events_skipped", dw_error_bit(DW_ERR_AIO_EVENTS_SKIPPED), kDropViewAll, &DropCounters::aio_events_skipped, "aio-skip",
     "AIO completions beyond what one io_getevents run reads: writes not counted"},
    {"aio_event_read", dw_error_bit(DW_ERR_AIO_EVENT_READ), kDropViewAll, &DropCounters::aio_event_read, "aio-read",
     "AIO completion or iocb unreadable: writes not counted"},
    {"rate_bucket_full", dw_error_bit(DW_ERR_RATE_BUCKET), kDropViewAll, &DropCounters::rate_bucket_full, "bucket",
     "rate-alarm bucket not created: writes missed the alarm"},
    {"throttle_not_stopped", dw_error_bit(DW_ERR_THROTTLE_RECORD) | dw_error_bit(DW_ERR_THROTTLE_SIGNAL),
     kDropViewAll, &DropCounters::throttle_not_stopped, "unstopped",
     "throttled writers over their allowance not stopped (stop record map full, or the signal refused)"},
};

inline constexpr size_t kDropReasonCount = sizeof(kDropReasons) / sizeof(kDropReasons[0]);

namespace drop_table_checks {

// Every DW_ERR_* index belongs to exactly one reason.
constexpr bool covers_every_error_once()
{
    uint32_t seen = 0;
    for (const auto &reason : kDropReasons) {
        if (reason.dw_errors == 0 || (seen & reason.dw_errors) != 0)
            return false;
        seen |= reason.dw_errors;
    }
    return seen == (1u << DW_ERR_COUNT) - 1;
}

// Names, labels and counters are each used once, and no text is empty.
constexpr bool unique_and_named()
{
    for (size_t i = 0; i < kDropReasonCount; ++i) {
        const auto &a = kDropReasons[i];
        if (a.name.empty() || a.label.empty() || a.help.empty() || a.counter == nullptr)
            return false;
        for (size_t j = i + 1; j < kDropReasonCount; ++j) {
            const auto &b = kDropReasons[j];
            if (a.name == b.name || a.label == b.label || a.counter == b.counter)
                return false;
        }
    }
    return true;
}

}  // namespace drop_table_checks

static_assert(DW_ERR_COUNT < 32, "dw_errors is a 32-bit mask");
static_assert(drop_table_checks::covers_every_error_once(), "each DW_ERR_* must be in exactly one kDropReasons row");
static_assert(drop_table_checks::unique_and_named(), "kDropReasons: a name, label or counter used twice, or empty");
// With distinct counters, this says every DropCounters field has its row.
static_assert(sizeof(DropCounters) == kDropReasonCount * sizeof(uint64_t),
              "every DropCounters field needs a kDropReasons row");

// The sum of all reasons.
inline uint64_t total_drops(const DropCounters &drops)
{
    uint64_t sum = 0;
    for (const auto &reason : kDropReasons)
        sum += drops.*reason.counter;
    return sum;
}

}  // namespace diskwatch
