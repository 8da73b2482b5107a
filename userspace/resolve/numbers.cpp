#include "resolve/numbers.h"

#include <cctype>
#include <charconv>
#include <system_error>

namespace diskwatch {

template <typename T> std::optional<T> parse_integer(std::string_view text, int base)
{
    if (text.empty())
        return std::nullopt;
    T value {};
    const char *const last = text.data() + text.size();
    const std::from_chars_result parsed = std::from_chars(text.data(), last, value, base);
    if (parsed.ec != std::errc() || parsed.ptr != last)
        return std::nullopt;
    return value;
}

template std::optional<int> parse_integer<int>(std::string_view, int);
template std::optional<unsigned> parse_integer<unsigned>(std::string_view, int);
template std::optional<long> parse_integer<long>(std::string_view, int);
template std::optional<unsigned long> parse_integer<unsigned long>(std::string_view, int);
template std::optional<long long> parse_integer<long long>(std::string_view, int);
template std::optional<unsigned long long> parse_integer<unsigned long long>(std::string_view, int);

std::optional<double> parse_double(std::string_view text)
{
    if (text.empty())
        return std::nullopt;
    double value = 0;
    const char *const last = text.data() + text.size();
    const std::from_chars_result parsed = std::from_chars(text.data(), last, value);
    if (parsed.ec != std::errc() || parsed.ptr != last)
        return std::nullopt;
    return value;
}

std::string_view trim_blanks(std::string_view text)
{
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
        text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.remove_suffix(1);
    return text;
}

}  // namespace diskwatch
