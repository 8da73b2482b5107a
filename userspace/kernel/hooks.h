// The families of write hooks the BPF object carries, and how one is chosen.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vocabulary/errno_text.h"  // errno_text: messages that name the call that failed

namespace diskwatch {

// Cheapest first. Userspace alone knows the family: it picks which programs of
// the one BPF object to load and attach (probe_kernel_features, below).
enum class HookFamily { fentry = 1, tp_btf = 2, raw_tp = 3, tracepoint = 4 };

inline constexpr HookFamily kHookPreference[] = {HookFamily::fentry, HookFamily::tp_btf, HookFamily::raw_tp,
                                                 HookFamily::tracepoint};

std::string_view to_string(HookFamily family);
std::optional<HookFamily> parse_hook_family(std::string_view text);  // "fentry", "tp_btf", ...

// The programs of the diskwatch BPF object that make up a family (write hooks, then
// the lifecycle hooks it pairs with).
std::vector<std::string> programs_of(HookFamily family);
// Programs of the family for write paths that not every kernel has (io_uring,
// shared-mmap page dirtying): attached when they load, left out (and named in
// WriteTracer::missing_programs) when they do not.
std::vector<std::string> optional_programs_of(HookFamily family);

// The program of the feature probe object (bpf/probe.bpf.c) that
// probe_kernel_features loads and attaches, alone, to tell whether `family`
// attaches on this kernel; and the one that tells whether the ring buffer works.
std::string probe_program_of(HookFamily family);
std::string ringbuf_probe_program();

struct HookProbe {
    bool available = false;
    std::string detail;  // why not, in the kernel's words (errno), when not available
};

struct KernelFeatures {
    std::string kernel_release;
    bool btf_vmlinux = false;  // /sys/kernel/btf/vmlinux: CO-RE and tp_btf need it
    std::map<HookFamily, HookProbe> hooks;
    HookProbe ringbuf;
    bool tracefs_mounted = false;
    std::string tracefs_path;
};

// Loads and attaches one empty program per hook type (bpf/probe.bpf.c), alone,
// and records what the kernel said. Needs root (CAP_BPF + CAP_PERFMON).
KernelFeatures probe_kernel_features();

struct HookChoice {
    std::optional<HookFamily> family;  // nullopt: nothing usable
    std::string reason;                // why this one (or why none)
};

// The cheapest available family, or the forced one if it is available.
HookChoice choose_hook_family(const KernelFeatures &features, std::optional<HookFamily> forced);

// True when the running kernel's BTF has `name` as a function (a kfunc or a
// helper's implementation): whether the object may call it.
bool kernel_btf_has_function(const char *name);

// Mounts tracefs at /sys/kernel/tracing if no tracefs is mounted (classic
// tracepoints need it to resolve event ids). Returns the mount point, or an
// error message.
std::optional<std::string> ensure_tracefs(std::string *error);

}  // namespace diskwatch
