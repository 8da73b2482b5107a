// libFuzzer target (docs/security.md, row 16): the policy parser on any text.
//   - never crash and never throw (yaml-cpp's exceptions are all caught);
//   - a policy, or an error that names the file ("FILE:LINE: KEY: reason"),
//     never both and never neither: the agent never starts half-configured.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_check.h"
#include "rules/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string yaml(reinterpret_cast<const char *>(data), size);
    std::string error;
    const auto policy = diskwatch::parse_policy(yaml, "fuzz.yaml", &error);
    if (policy) {
        check(error.empty());
        check(policy->interval_s > 0);
    } else {
        check(error.rfind("fuzz.yaml", 0) == 0);
    }
    return 0;
}
