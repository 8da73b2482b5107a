// The fuzzers' property check: a broken property says which, where, then
// aborts, so libFuzzer keeps the input as a crash artifact.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace diskwatch::fuzz {

inline void check_at(bool condition, const char *what, const char *file, int line)
{
    if (!condition) {
        std::fprintf(stderr, "%s:%d: property broken: %s\n", file, line, what);
        std::abort();
    }
}

}  // namespace diskwatch::fuzz

#define check(condition) ::diskwatch::fuzz::check_at((condition), #condition, __FILE__, __LINE__)
