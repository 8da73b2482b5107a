#pragma once

#include <string>

namespace diskwatch {
// write(2) until the whole line is out (EINTR retried); false with errno text on error.
bool write_all(int fd, const std::string &line, std::string *error);
}  // namespace diskwatch
