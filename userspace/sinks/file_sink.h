// Events appended to a file (--json-out PATH). reopen() on SIGHUP follows
// logrotate's convention: the old file is moved away, we start a new one.
// With a size cap (--json-max-size) the sink rotates by itself, so the
// monitor can never be what fills a disk: PATH -> PATH.1 ... PATH.N (N =
// --json-keep), the oldest dropped. A write that fails (disk full) drops the
// event (counted in stats()), leaves no partial line behind, and is said on
// stderr once per episode, not once per event; writing resumes by itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>

#include "sinks/queued_sink.h"

namespace diskwatch {

struct FileSinkOptions {
    std::string path;
    uint64_t max_size_bytes = 0;  // 0: no cap (logrotate's business)
    unsigned keep = 5;            // rotated files kept beside PATH when capped
};

class FileSink final : public QueuedLineSink {
public:
    // Opens (creates, appends) the file now, so a bad path fails at start;
    // nullptr with the reason in *error.
    static std::unique_ptr<FileSink> open(const FileSinkOptions &options, std::string *error);
    static std::unique_ptr<FileSink> open(const std::string &path, std::string *error)
    {
        return open(FileSinkOptions {path}, error);
    }
    ~FileSink() override;
    void reopen() override;
    std::string name() const override { return "file:" + options_.path; }

private:
    FileSink(FileSinkOptions options, int fd, off_t size);
    bool write_line(const std::string &line, std::string *error) override;
    void rotate_locked();  // PATH -> PATH.1 -> ... -> PATH.keep; a fresh PATH

    const FileSinkOptions options_;
    std::mutex fd_mutex_;
    int fd_ = -1;
    off_t size_ = 0;             // of the file behind fd_ (fstat before each line)
    bool failing_ = false;       // in a failure episode (said once on stderr)
    uint64_t failed_lines_ = 0;  // in this episode
};

}  // namespace diskwatch
