// The batch (`top -b`) text table, one block per refresh, like top -b and iotop -b.
#pragma once

#include <string>

#include "aggregate/write_report.h"

namespace diskwatch {

// Who a row is, in words: the container (its Docker name, or short id), else
// the systemd unit, else the cgroup path.
std::string who_text(const ReportRow &row);
// The files a row writes, one line: "path, path (DELETED, still open)".
std::string files_text(const ReportRow &row);

std::string to_text_table(const WriteReport &report, size_t max_rows = 0 /* 0: all */);

}  // namespace diskwatch
