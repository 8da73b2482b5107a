#include "kernel/hooks.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "diskwatch/abi.h"  // before the skeleton: it names struct dw_config
#include "diskwatch.skel.h"
#include "probe.skel.h"
#include "resolve/mountinfo.h"

namespace diskwatch {

std::string_view to_string(HookFamily family)
{
    switch (family) {
    case HookFamily::fentry:
        return "fentry";
    case HookFamily::tp_btf:
        return "tp_btf";
    case HookFamily::raw_tp:
        return "raw_tp";
    case HookFamily::tracepoint:
        return "tracepoint";
    }
    return "?";
}

std::optional<HookFamily> parse_hook_family(std::string_view text)
{
    for (auto family : kHookPreference)
        if (text == to_string(family))
            return family;
    return std::nullopt;
}

// A program of a BPF object, named through its skeleton's member: a program
// the object does not have (renamed, or a macro that no longer pastes that
// name) fails to compile here instead of loading a null program. Names, not
// pointers, because each load attempt opens a new skeleton.
#define DW_SKEL_PROGRAM(skel, member) ((void)sizeof(&decltype(skel::progs)::member), #member)
// The diskwatch object (bpf/diskwatch.bpf.c lists its files) and the feature
// probe object (bpf/probe.bpf.c).
#define DW_PROGRAM(member) DW_SKEL_PROGRAM(diskwatch_bpf, member)
#define DW_PROBE_PROGRAM(member) DW_SKEL_PROGRAM(probe_bpf, member)

std::vector<std::string> programs_of(HookFamily family)
{
    switch (family) {
    case HookFamily::fentry:
        // The first two keep their names and signatures (the qemu VM test
        // of issue 8 knows them); fexit on the sendfile, splice and
        // copy_file_range syscalls counts those three (check_fentry_targets
        // makes sure every target exists).
        return {DW_PROGRAM(dw_vfs_write_exit),      DW_PROGRAM(dw_vfs_writev_exit),
                DW_PROGRAM(dw_sendfile64_exit),     DW_PROGRAM(dw_splice_exit),
                DW_PROGRAM(dw_copy_file_range_exit), DW_PROGRAM(dw_exec_btf),
                DW_PROGRAM(dw_exit_btf),            DW_PROGRAM(dw_rename_btf)};
    case HookFamily::tp_btf:
        return {DW_PROGRAM(dw_sys_exit_btf), DW_PROGRAM(dw_exec_btf), DW_PROGRAM(dw_exit_btf),
                DW_PROGRAM(dw_rename_btf)};
    case HookFamily::raw_tp:
        return {DW_PROGRAM(dw_sys_exit_raw), DW_PROGRAM(dw_exec_raw), DW_PROGRAM(dw_exit_raw),
                DW_PROGRAM(dw_rename_raw)};
    case HookFamily::tracepoint:
        // Each write syscall's enter (its fd) and exit (its bytes), then the
        // lifecycle: raw tracepoints exist wherever the ring buffer does (4.17 < 5.8).
        return {DW_PROGRAM(dw_enter_write),           DW_PROGRAM(dw_exit_write),
                DW_PROGRAM(dw_enter_pwrite64),        DW_PROGRAM(dw_exit_pwrite64),
                DW_PROGRAM(dw_enter_writev),          DW_PROGRAM(dw_exit_writev),
                DW_PROGRAM(dw_enter_pwritev),         DW_PROGRAM(dw_exit_pwritev),
                DW_PROGRAM(dw_enter_pwritev2),        DW_PROGRAM(dw_exit_pwritev2),
                DW_PROGRAM(dw_enter_sendfile64),      DW_PROGRAM(dw_exit_sendfile64),
                DW_PROGRAM(dw_enter_splice),          DW_PROGRAM(dw_exit_splice),
                DW_PROGRAM(dw_enter_copy_file_range), DW_PROGRAM(dw_exit_copy_file_range),
                DW_PROGRAM(dw_exec_raw),              DW_PROGRAM(dw_exit_raw),
                DW_PROGRAM(dw_rename_raw)};
    }
    return {};
}

std::vector<std::string> optional_programs_of(HookFamily family)
{
    // io_uring (CONFIG_IO_URING, and the request argument since 5.19) and the
    // folio dirtying tracepoint (5.17; writeback_dirty_page before; neither
    // commit confirmed here, so none cited) are not
    // on every kernel: without them those paths are not counted, the rest is.
    // signal_generate names who continued a throttled writer (throttle.defied);
    // without it the writer is still stopped again, unnamed. The restop twin
    // needs bpf_send_signal_task (6.13+, 6280cf718db0): without it each SIGCONT lets one
    // write through.
    switch (family) {
    case HookFamily::fentry:
        // fallocate's growth completes the family; optional so that a kernel
        // where vfs_fallocate is inlined or renamed still loads the rest.
        return {DW_PROGRAM(dw_vfs_fallocate_exit), DW_PROGRAM(dw_io_uring_complete_btf),
                DW_PROGRAM(dw_dirty_folio_btf),
                // AIO completions, ftruncate and sizes at open: fexit on those
                // syscalls' own entry points (no sys_exit hook in this family).
                DW_PROGRAM(dw_io_getevents_exit), DW_PROGRAM(dw_io_pgetevents_exit), DW_PROGRAM(dw_ftruncate_exit),
                DW_PROGRAM(dw_open_exit), DW_PROGRAM(dw_openat_exit), DW_PROGRAM(dw_openat2_exit),
                DW_PROGRAM(dw_creat_exit), DW_PROGRAM(dw_signal_generate_btf), DW_PROGRAM(dw_sigcont_restop_btf),
                DW_PROGRAM(dw_io_uring_enter_exit)};
    case HookFamily::tp_btf:
        return {DW_PROGRAM(dw_io_uring_complete_btf), DW_PROGRAM(dw_dirty_folio_btf),
                DW_PROGRAM(dw_signal_generate_btf), DW_PROGRAM(dw_sigcont_restop_btf)};
    case HookFamily::raw_tp:
        return {DW_PROGRAM(dw_io_uring_complete_raw), DW_PROGRAM(dw_dirty_folio_raw),
                DW_PROGRAM(dw_signal_generate_raw)};
    case HookFamily::tracepoint:
        // Growth (ftruncate, fallocate, sizes at open) and Linux AIO
        // completions; openat2 and io_pgetevents are younger than the rest.
        return {DW_PROGRAM(dw_io_uring_complete_raw), DW_PROGRAM(dw_dirty_folio_raw),
                DW_PROGRAM(dw_signal_generate_raw),   DW_PROGRAM(dw_exit_io_uring_enter),
                DW_PROGRAM(dw_enter_ftruncate),       DW_PROGRAM(dw_exit_ftruncate),
                DW_PROGRAM(dw_enter_fallocate),       DW_PROGRAM(dw_exit_fallocate),
                DW_PROGRAM(dw_enter_io_getevents),    DW_PROGRAM(dw_exit_io_getevents),
                DW_PROGRAM(dw_enter_io_pgetevents),   DW_PROGRAM(dw_exit_io_pgetevents),
                DW_PROGRAM(dw_exit_open),             DW_PROGRAM(dw_exit_openat),
                DW_PROGRAM(dw_exit_openat2),          DW_PROGRAM(dw_exit_creat)};
    }
    return {};
}

std::string probe_program_of(HookFamily family)
{
    switch (family) {
    case HookFamily::fentry:
        return DW_PROBE_PROGRAM(probe_fentry);
    case HookFamily::tp_btf:
        return DW_PROBE_PROGRAM(probe_tp_btf);
    case HookFamily::raw_tp:
        return DW_PROBE_PROGRAM(probe_raw_tp);
    case HookFamily::tracepoint:
        return DW_PROBE_PROGRAM(probe_tracepoint);
    }
    return {};
}

std::string ringbuf_probe_program() { return DW_PROBE_PROGRAM(probe_ringbuf_prog); }

#undef DW_PROBE_PROGRAM
#undef DW_PROGRAM
#undef DW_SKEL_PROGRAM

namespace {

int quiet_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
    // A failing probe is an answer, not an error: keep libbpf's words for -v.
    (void)level, (void)format, (void)args;
    return 0;
}

// Load the probe object with only `program` (probe_program_of,
// ringbuf_probe_program) enabled, then attach it.
HookProbe probe_one(const std::string &program)
{
    struct RestorePrint {
        libbpf_print_fn_t previous = libbpf_set_print(quiet_libbpf);
        ~RestorePrint() { libbpf_set_print(previous); }
    } restore;
    if (spdlog::should_log(spdlog::level::debug))
        libbpf_set_print(restore.previous);
    HookProbe result;
    probe_bpf *skel = probe_bpf__open();
    if (!skel) {
        result.detail = "open: " + errno_text(errno);
        return result;
    }
    // The names come from the skeleton's members (DW_PROBE_PROGRAM), so this
    // only fails if that list and the object were built from different files.
    bpf_program *const target = bpf_object__find_program_by_name(skel->obj, program.c_str());
    if (!target) {
        result.detail = "no program " + program + " in the probe object (bpf/probe.bpf.c)";
        probe_bpf__destroy(skel);
        return result;
    }
    bpf_program *prog;
    bpf_object__for_each_program(prog, skel->obj)
        bpf_program__set_autoload(prog, prog == target);
    int err = probe_bpf__load(skel);
    if (err) {
        result.detail = "load: " + errno_text(err);
        probe_bpf__destroy(skel);
        return result;
    }
    bpf_link *link = bpf_program__attach(target);
    if (!link) {
        result.detail = "attach: " + errno_text(errno);
    } else {
        result.available = true;
        bpf_link__destroy(link);
    }
    probe_bpf__destroy(skel);
    return result;
}

// What the fentry family needs beyond an fexit that attaches (the probe
// program only tries vfs_write): every function it attaches to, and the
// helper it calls, must be in this kernel's BTF, or the whole family fails to
// load after it was chosen. A static function the compiler inlined is not.
HookProbe check_fentry_targets()
{
    static constexpr const char *kNeeded[] = {
        "vfs_write",         // write, pwrite64
        "vfs_writev",        // writev, pwritev, pwritev2 (static: present only if not inlined)
        "__x64_sys_sendfile64", "__x64_sys_splice", "__x64_sys_copy_file_range",  // those three
        "bpf_task_pt_regs",  // tells the write syscalls apart at page dirtying (v5.15, dd6e10fbd9fb)
    };
    HookProbe result;
    btf *vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) {
        result.detail = "kernel BTF: " + errno_text(errno);
        return result;
    }
    std::string missing;
    for (const char *function : kNeeded)
        if (btf__find_by_name_kind(vmlinux, function, BTF_KIND_FUNC) < 0)
            missing += (missing.empty() ? "" : ", ") + std::string(function);
    btf__free(vmlinux);
    if (!missing.empty()) {
        result.detail = "not in kernel BTF: " + missing;
        return result;
    }
    result.available = true;
    return result;
}

}  // namespace

bool kernel_btf_has_function(const char *name)
{
    btf *vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux)
        return false;
    const bool found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC) >= 0;
    btf__free(vmlinux);
    return found;
}

std::optional<std::string> ensure_tracefs(std::string *error)
{
    const auto mounts = MountTable::load();
    for (const auto &entry : mounts.entries())
        if (entry.fstype == "tracefs")
            return entry.mount_point;
    const char *path = "/sys/kernel/tracing";
    if (::mount("tracefs", path, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        if (error)
            *error = std::string("mount tracefs on ") + path + ": " + errno_text(errno);
        return std::nullopt;
    }
    return std::string(path);
}

KernelFeatures probe_kernel_features()
{
    KernelFeatures features;
    struct utsname uts {};
    if (::uname(&uts) == 0)
        features.kernel_release = uts.release;
    struct stat st {};
    features.btf_vmlinux = ::stat("/sys/kernel/btf/vmlinux", &st) == 0;

    const auto mounts = MountTable::load();
    for (const auto &entry : mounts.entries()) {
        if (entry.fstype == "tracefs") {
            features.tracefs_mounted = true;
            features.tracefs_path = entry.mount_point;
            break;
        }
    }

    if (!features.btf_vmlinux) {
        // CO-RE relocations need kernel BTF; no program of ours can load.
        for (auto family : kHookPreference)
            features.hooks[family] = {false, "no kernel BTF (/sys/kernel/btf/vmlinux)"};
        features.ringbuf = {false, "no kernel BTF"};
        return features;
    }
    features.hooks[HookFamily::fentry] = probe_one(probe_program_of(HookFamily::fentry));
    if (features.hooks[HookFamily::fentry].available)
        features.hooks[HookFamily::fentry] = check_fentry_targets();
    features.hooks[HookFamily::tp_btf] = probe_one(probe_program_of(HookFamily::tp_btf));
    features.hooks[HookFamily::raw_tp] = probe_one(probe_program_of(HookFamily::raw_tp));
    if (features.tracefs_mounted) {
        features.hooks[HookFamily::tracepoint] = probe_one(probe_program_of(HookFamily::tracepoint));
    } else {
        features.hooks[HookFamily::tracepoint] = {
            false, "tracefs is not mounted (mounted on demand when this family is chosen)"};
    }
    features.ringbuf = probe_one(ringbuf_probe_program());
    return features;
}

HookChoice choose_hook_family(const KernelFeatures &features, std::optional<HookFamily> forced)
{
    HookChoice choice;
    if (!features.ringbuf.available) {
        choice.reason = "BPF ring buffer unavailable: " + features.ringbuf.detail;
        return choice;
    }
    if (forced) {
        auto it = features.hooks.find(*forced);
        const bool tracepoint_needs_mount = *forced == HookFamily::tracepoint && !features.tracefs_mounted;
        if ((it != features.hooks.end() && it->second.available) || tracepoint_needs_mount) {
            choice.family = forced;
            choice.reason = "forced by --hooks";
        } else {
            choice.reason = std::string("--hooks ") + std::string(to_string(*forced)) +
                            " is not available here: " + (it != features.hooks.end() ? it->second.detail : "");
        }
        return choice;
    }
    for (auto family : kHookPreference) {
        auto it = features.hooks.find(family);
        if (it != features.hooks.end() && it->second.available) {
            choice.family = family;
            choice.reason = "cheapest hook family this kernel attaches";
            return choice;
        }
    }
    choice.reason = "no write hook family attaches on this kernel";
    return choice;
}

}  // namespace diskwatch
