// What is UTF-8 and what is not: the names any user controls (comm, exe,
// cgroup and mount paths) are bytes; the JSON names (vocabulary/json_names.h) and
// the views (views/format.h) both need to tell.
#pragma once

#include <cstddef>
#include <string_view>

namespace diskwatch {

// Length of the valid UTF-8 sequence at text[i] (i < text.size()), or 0 if it
// is not one; *code_point gets its value.
size_t utf8_sequence_length(std::string_view text, size_t i, unsigned *code_point);

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF).
bool is_valid_utf8(std::string_view text);

}  // namespace diskwatch
