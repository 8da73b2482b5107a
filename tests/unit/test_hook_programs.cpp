// Every program each hook family names (kernel/hooks.cpp) is in the BPF
// object, in a section of that family's attach type. No root, no kernel: the
// object is opened, never loaded. (hooks.cpp already fails to compile on a
// name the skeleton lacks; this checks that the families pair each name with
// a program of the right kind.) The same for the feature probe object
// (bpf/probe.bpf.c): each family's probe program and the ring buffer's.
#include <bpf/libbpf.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "diskwatch/abi.h"  // before the skeleton: it names struct dw_config
#include "diskwatch.skel.h"
#include "kernel/hooks.h"
#include "probe.skel.h"

using namespace diskwatch;

namespace {

bool starts_with(const std::string &text, const std::string &prefix) { return text.rfind(prefix, 0) == 0; }

// The section prefixes a family's programs may have: its write hooks' own
// kind, and the raw tracepoints and tp_btf lifecycle hooks it pairs with.
bool section_fits(HookFamily family, const std::string &section)
{
    switch (family) {
    case HookFamily::fentry:
        return starts_with(section, "fexit/") || starts_with(section, "fentry/") || starts_with(section, "tp_btf/");
    case HookFamily::tp_btf:
        return starts_with(section, "tp_btf/");
    case HookFamily::raw_tp:
        return starts_with(section, "raw_tp/") || starts_with(section, "raw_tracepoint/");
    case HookFamily::tracepoint:
        return starts_with(section, "tracepoint/") || starts_with(section, "raw_tp/") ||
               starts_with(section, "raw_tracepoint/");
    }
    return false;
}

// What the probe for a family must be to answer for it: the program type and
// attach kind of that family's write hooks (fexit, a BTF-typed raw
// tracepoint, a raw tracepoint, a classic tracepoint).
void check_probe_kind(HookFamily family, const bpf_program *program)
{
    const auto type = bpf_program__type(program);
    const auto attach = bpf_program__expected_attach_type(program);
    switch (family) {
    case HookFamily::fentry:
        CHECK(type == BPF_PROG_TYPE_TRACING);
        CHECK((attach == BPF_TRACE_FENTRY || attach == BPF_TRACE_FEXIT));
        return;
    case HookFamily::tp_btf:
        CHECK(type == BPF_PROG_TYPE_TRACING);
        CHECK(attach == BPF_TRACE_RAW_TP);
        return;
    case HookFamily::raw_tp:
        CHECK(type == BPF_PROG_TYPE_RAW_TRACEPOINT);
        return;
    case HookFamily::tracepoint:
        CHECK(type == BPF_PROG_TYPE_TRACEPOINT);
        return;
    }
    FAIL("no expected kind for this family");
}

}  // namespace

TEST_CASE("every program a hook family names is in the BPF object, of the family's attach type", "[kernel][hooks]")
{
    struct Destroy {
        void operator()(diskwatch_bpf *skel) const { diskwatch_bpf__destroy(skel); }
    };
    std::unique_ptr<diskwatch_bpf, Destroy> skel(diskwatch_bpf__open());
    REQUIRE(skel);
    for (HookFamily family : kHookPreference) {
        auto names = programs_of(family);
        CHECK_FALSE(names.empty());
        const auto optional = optional_programs_of(family);
        names.insert(names.end(), optional.begin(), optional.end());
        for (const auto &name : names) {
            INFO("family " << to_string(family) << ", program " << name);
            const bpf_program *program = bpf_object__find_program_by_name(skel->obj, name.c_str());
            REQUIRE(program);
            CHECK(section_fits(family, bpf_program__section_name(program)));
        }
    }
}

TEST_CASE("every feature probe program is in the probe object, of the kind it answers for", "[kernel][hooks]")
{
    struct Destroy {
        void operator()(probe_bpf *skel) const { probe_bpf__destroy(skel); }
    };
    std::unique_ptr<probe_bpf, Destroy> skel(probe_bpf__open());
    REQUIRE(skel);
    for (HookFamily family : kHookPreference) {
        const auto name = probe_program_of(family);
        INFO("family " << to_string(family) << ", probe program " << name);
        const bpf_program *program = bpf_object__find_program_by_name(skel->obj, name.c_str());
        REQUIRE(program);
        check_probe_kind(family, program);
    }
    // The ring buffer probe: a raw tracepoint that outputs to the object's ring buffer.
    const auto name = ringbuf_probe_program();
    INFO("ring buffer probe program " << name);
    const bpf_program *program = bpf_object__find_program_by_name(skel->obj, name.c_str());
    REQUIRE(program);
    CHECK(bpf_program__type(program) == BPF_PROG_TYPE_RAW_TRACEPOINT);
    CHECK(bpf_map__type(skel->maps.probe_ringbuf) == BPF_MAP_TYPE_RINGBUF);
}
