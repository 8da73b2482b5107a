#include "cli/doctor.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/privileges.h"
#include "kernel/write_tracer.h"
#include "resolve/mountinfo.h"

namespace diskwatch {

namespace {

std::vector<std::string> cgroup2_controllers(const std::string &mount_point)
{
    std::ifstream in(mount_point + "/cgroup.controllers");
    std::vector<std::string> controllers;
    std::string name;
    while (in >> name)
        controllers.push_back(name);
    return controllers;
}

}  // namespace

int run_doctor(const DoctorOptions &options)
{
    if (auto missing = missing_bpf_privileges(); !missing.empty()) {
        std::cerr << "ebpf-diskwatch doctor: " << missing << "\n";
        return kExitCannotRunHere;
    }
    const KernelFeatures features = probe_kernel_features();
    const HookChoice choice = choose_hook_family(features, options.forced_hooks);

    // Prove the choice: load and attach the real programs, then detach.
    std::vector<std::string> attached, missing;
    std::string attach_error;
    if (choice.family) {
        if (auto tracer = WriteTracer::start(*choice.family, &attach_error))
        {
            attached = tracer->attached_programs();
            missing = tracer->missing_programs();
        }
    }
    const bool ok = choice.family && attach_error.empty();

    const MountTable mounts = MountTable::load();
    const MountEntry *cgroup2 = mounts.find_cgroup2();
    const auto controllers = cgroup2 ? cgroup2_controllers(cgroup2->mount_point) : std::vector<std::string>{};

    if (options.json) {
        nlohmann::json hooks = nlohmann::json::object();
        for (auto family : kHookPreference) {
            const auto &probe = features.hooks.at(family);
            hooks[std::string(to_string(family))] = {{"available", probe.available}, {"detail", probe.detail}};
        }
        nlohmann::json doc = {
            {"ok", ok},
            {"kernel", features.kernel_release},
            {"btf", features.btf_vmlinux},
            {"hooks", hooks},
            {"ringbuf", {{"available", features.ringbuf.available}, {"detail", features.ringbuf.detail}}},
            {"tracefs", features.tracefs_mounted ? nlohmann::json(features.tracefs_path) : nlohmann::json(nullptr)},
            {"chosen_hooks", choice.family ? nlohmann::json(std::string(to_string(*choice.family))) : nlohmann::json(nullptr)},
            {"reason", choice.reason},
            {"programs", attached},
            {"not_counted", missing},  // optional write-path programs this kernel lacks
            {"error", attach_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(attach_error)},
            {"cgroup2",
             cgroup2 ? nlohmann::json{{"mount", cgroup2->mount_point}, {"controllers", controllers}}
                     : nlohmann::json(nullptr)},
        };
        std::cout << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        return ok ? kExitOk : kExitCannotRunHere;
    }

    std::printf("kernel        %s\n", features.kernel_release.c_str());
    std::printf("BTF           %s\n", features.btf_vmlinux ? "yes (/sys/kernel/btf/vmlinux)" : "NO");
    std::printf("ring buffer   %s\n", features.ringbuf.available ? "yes" : ("NO: " + features.ringbuf.detail).c_str());
    std::printf("tracefs       %s\n", features.tracefs_mounted ? features.tracefs_path.c_str() : "not mounted");
    std::printf("hook families (cheapest first):\n");
    for (auto family : kHookPreference) {
        const auto &probe = features.hooks.at(family);
        std::printf("  %-11s %s%s\n", std::string(to_string(family)).c_str(), probe.available ? "yes" : "no",
                    probe.available ? "" : ("  (" + probe.detail + ")").c_str());
    }
    if (cgroup2) {
        std::string joined;
        for (const auto &c : controllers)
            joined += (joined.empty() ? "" : " ") + c;
        std::printf("cgroup v2     %s  controllers: %s\n", cgroup2->mount_point.c_str(),
                    joined.empty() ? "(none enabled)" : joined.c_str());
    } else {
        std::printf("cgroup v2     not mounted: cgroup columns will show ids only\n");
    }
    if (!choice.family) {
        std::printf("\nCANNOT RUN: %s\n", choice.reason.c_str());
        return kExitCannotRunHere;
    }
    std::printf("\nwould attach  %s (%s)\n", std::string(to_string(*choice.family)).c_str(), choice.reason.c_str());
    if (!attach_error.empty()) {
        std::printf("CANNOT RUN: %s\n", attach_error.c_str());
        return kExitCannotRunHere;
    }
    for (const auto &program : attached)
        std::printf("  attached    %s\n", program.c_str());
    for (const auto &program : missing)
        std::printf("  not counted %s\n", program.c_str());
    std::printf("ok: ebpf-diskwatch can run here\n");
    return kExitOk;
}

}  // namespace diskwatch
