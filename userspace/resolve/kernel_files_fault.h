// Test seam of read_kernel_file (resolve/kernel_files.h), for the unit tests
// only: the product never includes this header. Lets a test make a read fail
// as the kernel would (ESRCH from a reaped process's /proc file, EIO), or
// remove the file between open and read.
#pragma once

namespace diskwatch {

// Called after open(2) succeeded and before each read(2) with the file's path;
// a nonzero return is taken as that read's errno. Process-wide; nullptr
// (the default) injects nothing.
using KernelFileFault = int (*)(const char *path);
void set_kernel_file_fault(KernelFileFault fault);

}  // namespace diskwatch
