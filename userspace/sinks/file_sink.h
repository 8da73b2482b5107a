// Events appended to a file (--json-out PATH). reopen() on SIGHUP follows
// logrotate's convention: the old file is moved away, we start a new one.
#pragma once

#include <mutex>

#include "sinks/queued_sink.h"

namespace diskwatch {

class FileSink final : public QueuedLineSink {
public:
    // Opens (creates, appends) the file now, so a bad path fails at start;
    // nullptr with the reason in *error.
    static std::unique_ptr<FileSink> open(const std::string &path, std::string *error);
    ~FileSink() override;
    void reopen() override;
    std::string name() const override { return "file:" + path_; }

private:
    FileSink(std::string path, int fd);
    bool write_line(const std::string &line, std::string *error) override;

    std::string path_;
    std::mutex fd_mutex_;
    int fd_ = -1;
};

}  // namespace diskwatch
