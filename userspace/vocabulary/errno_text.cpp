#include "vocabulary/errno_text.h"

#include <cstring>

namespace diskwatch {

std::string errno_text(int err)
{
    err = err < 0 ? -err : err;
    const char *text = strerrordesc_np(err);
    return std::string(text ? text : "unknown error") + " (errno " + std::to_string(err) + ")";
}

}  // namespace diskwatch
