// Numbers out of text the kernel or a user wrote (/proc fields, policy
// values): std::from_chars, the whole text consumed and the value in range,
// or nullopt. Never throws (std::stoul and its kin throw on garbage and on
// overflow, which a reaped process's truncated file or a typo would reach).
#pragma once

#include <optional>
#include <string_view>

namespace diskwatch {

// An integer of type T, in `base` (no sign for unsigned T, no "0x" prefix,
// no blanks). Instantiated in numbers.cpp for int, unsigned, long, unsigned
// long, long long and unsigned long long (so for uint32_t, uint64_t, gid_t).
template <typename T> std::optional<T> parse_integer(std::string_view text, int base = 10);

extern template std::optional<int> parse_integer<int>(std::string_view, int);
extern template std::optional<unsigned> parse_integer<unsigned>(std::string_view, int);
extern template std::optional<long> parse_integer<long>(std::string_view, int);
extern template std::optional<unsigned long> parse_integer<unsigned long>(std::string_view, int);
extern template std::optional<long long> parse_integer<long long>(std::string_view, int);
extern template std::optional<unsigned long long> parse_integer<unsigned long long>(std::string_view, int);

// A decimal floating-point number (as std::from_chars reads it: no leading
// '+' or blanks; "inf" and "nan" are numbers to it, so callers that need a
// finite value check).
std::optional<double> parse_double(std::string_view text);

// `text` without its leading and trailing blanks (isspace: space, tab,
// newlines, \v, \f): a value as a person wrote it around a number or in a
// configuration file.
std::string_view trim_blanks(std::string_view text);

}  // namespace diskwatch
