// Who, in words: the systemd unit and the container a cgroup path names. The
// one derivation from a cgroup path: top's rows (resolve/), the events'
// `cgroup.unit` and `cgroup.container` (events/) and the container resolver
// all read it here.
#pragma once

#include <string>
#include <string_view>

namespace diskwatch {

struct CgroupWorkload {
    std::string unit;          // innermost systemd unit: "suricata.service", "docker-<id>.scope"; empty if none
    std::string container_id;  // 64 hex digits; empty if the path names no container
    std::string runtime;       // "docker", "containerd", "cri-o", "podman", "kubernetes" (cgroupfs driver); empty if none
    std::string pod_uid;       // Kubernetes pod uid when the path carries one
    // The cgroup (a prefix of the path) whose name carries the container id:
    // the outermost such component. Who made that directory says whether the
    // runtime did (ContainerResolver::lookup_cgroup).
    std::string container_cgroup;
};

// Pure: reads nothing. Knows the systemd driver forms
//   /system.slice/suricata.service
//   /system.slice/docker-<id>.scope
//   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
//   /machine.slice/libpod-<id>.scope, crio-<id>.scope
//   /system.slice/containerd.service/kubepods-...-pod<uid>.slice:cri-containerd:<id>
// and the cgroupfs driver forms /docker/<id>, /kubepods/burstable/pod<uid>/<id>.
CgroupWorkload describe_cgroup(std::string_view cgroup_path);

}  // namespace diskwatch
