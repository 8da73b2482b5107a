#include "kernel/bench_parts.h"

#include <array>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "diskwatch/abi.h"

namespace diskwatch {

namespace {

constexpr std::array<std::pair<std::string_view, uint32_t>, 6> kParts {{
    {"device", DW_PART_DEVICE},
    {"growth", DW_PART_GROWTH},
    {"rate-alarm", DW_PART_RATE_ALARM},
    {"writers", DW_PART_WRITERS},
    {"dirty-folio", DW_PART_DIRTY_FOLIO},
    {"dirty-folio-hook", DW_PART_DIRTY_FOLIO_HOOK},
}};

}  // namespace

bool read_bench_parts_off(uint32_t *parts, std::string *applied, std::string *error)
{
    const char *text = std::getenv("DISKWATCH_BENCH_PARTS_OFF");  // NOLINT(concurrency-mt-unsafe): read once at start
    *parts = 0;
    applied->clear();
    if (!text || !*text)
        return true;
    std::string_view rest(text);
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view name = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        bool known = false;
        for (const auto &[part_name, bit] : kParts) {
            if (name == part_name) {
                *parts |= bit;
                known = true;
            }
        }
        if (!known) {
            *error = "DISKWATCH_BENCH_PARTS_OFF: unknown part '" + std::string(name) +
                     "' (known: device, growth, rate-alarm, writers, dirty-folio, dirty-folio-hook)";
            return false;
        }
    }
    applied->assign("write path measured without: ").append(text).append(
        " (DISKWATCH_BENCH_PARTS_OFF, for scripts/bench only: counts are wrong by design)");
    return true;
}

}  // namespace diskwatch
