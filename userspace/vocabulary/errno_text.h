// The one text of an errno value: "No such file or directory (errno 2)".
#pragma once

#include <string>

namespace diskwatch {

// The description and the number; a negative value (libbpf's -errno) counts
// as its absolute value.
std::string errno_text(int err);

}  // namespace diskwatch
