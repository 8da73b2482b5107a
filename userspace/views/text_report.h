// The batch (`top -b`) text table, one block per refresh, like top -b and iotop -b.
#pragma once

#include <string>

#include "aggregate/write_report.h"

namespace diskwatch {

std::string to_text_table(const WriteReport &report, size_t max_rows = 0 /* 0: all */);

}  // namespace diskwatch
