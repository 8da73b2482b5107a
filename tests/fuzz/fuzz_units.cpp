// libFuzzer target (docs/security.md, row 16): the size, rate and duration
// parsers of the policy ("50MiB/s", "10GiB", "1m30s") on any text.
//   - never crash; an answer, or a reason and no answer, never both;
//   - an answer is a finite number, not negative.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_check.h"
#include "rules/units.h"

namespace {


template <typename Parse>
void holds(Parse parse, const std::string &text)
{
    std::string error;
    const auto value = parse(text, &error);
    check(value.has_value() == error.empty());
    if (value) {
        check(std::isfinite(static_cast<double>(*value)));
        check(static_cast<double>(*value) >= 0);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    holds([](std::string_view t, std::string *e) { return diskwatch::parse_size(t, e); }, text);
    holds([](std::string_view t, std::string *e) { return diskwatch::parse_rate(t, e); }, text);
    holds([](std::string_view t, std::string *e) { return diskwatch::parse_duration(t, e); }, text);
    return 0;
}
