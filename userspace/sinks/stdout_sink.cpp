#include "sinks/stdout_sink.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sinks/write_all.h"
#include "vocabulary/errno_text.h"

namespace diskwatch {

bool write_all(int fd, const std::string &line, std::string *error)
{
    size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            *error = std::string("write: ") + errno_text(errno);
            return false;
        }
        done += static_cast<size_t>(n);
    }
    return true;
}

StdoutSink::StdoutSink() { start(); }

StdoutSink::~StdoutSink() { stop(); }

bool StdoutSink::write_line(const std::string &line, std::string *error)
{
    return write_all(STDOUT_FILENO, line, error);
}

}  // namespace diskwatch
