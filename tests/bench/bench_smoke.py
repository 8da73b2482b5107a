#!/usr/bin/env python3
"""CTest `bench_smoke`: runs `scripts/bench --quick` and checks that its JSON
has every workload row, every configuration, and numbers that are sane.

A smoke test of the harness (docs/benchmarks.md): it proves the benchmark
runs and measures, and never asserts a timing target (speed is reported by
scripts/bench, not tested). Needs root; without it the test is skipped
(exit 77), except under CI=true, where it fails.
"""
import argparse
import json
import math
import os
import subprocess
import sys

WORKLOADS = ["pwrite_4k", "pwrite_4k_all_cpus", "getppid", "append_4k_ext4", "append_line_ext4", "write_1m_ext4",
             "scale_1000x100"]
PARTS = ["device", "growth", "rate-alarm", "writers", "dirty-folio", "dirty-folio-hook"]
PART_WORKLOADS = ["pwrite_4k", "append_4k_ext4", "append_line_ext4"]
CONFIGS = ["none", "floor", "top", "bpftrace", "agent"]
DROP_KEYS = ["writers_map_full", "ringbuf_full", "file_lookup", "pairing_map_full"]

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
    return condition


def number(value, low, high):
    return isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high


def check_results(doc, printed):
    settings = doc["settings"]
    configs = doc["configs"]
    check(sorted(configs) == sorted(CONFIGS), f"configs {sorted(configs)}")
    for name in ("none", "floor", "top"):
        check(configs[name]["available"], f"{name} must be measurable here")
    for name in ("bpftrace", "agent"):
        check(configs[name]["available"] or configs[name]["reason"].startswith("not available"),
              f"{name}: unavailable without a 'not available' reason")
    rows = {row["name"]: row for row in doc["workloads"]}
    check(sorted(rows) == sorted(WORKLOADS), f"workload rows {sorted(rows)}")
    for name, row in rows.items():
        check(f"| {name} " in printed, f"markdown table has no {name} row")
        for config, entry in row["results"].items():
            where = f"{name}/{config}"
            if not configs[config]["available"]:
                check(entry.get("available") is False, f"{where}: unavailable config has numbers")
                continue
            check(len(entry["rounds"]) == settings["rounds"], f"{where}: {len(entry['rounds'])} rounds")
            # ns per operation: a syscall takes more than 10 ns and, even on a
            # loaded VM, a 1 MiB write less than a second.
            check(number(entry["median"], 10, 1e9), f"{where}: median {entry['median']}")
            if config != "none":
                check(number(entry["ratio"], 0.05, 50), f"{where}: ratio {entry['ratio']}")
                check(number(entry["added"], -1e9, 1e9), f"{where}: added {entry['added']}")
                check(0 <= entry["clean_rounds"] <= settings["rounds"], f"{where}: clean rounds")

    nproc = doc["machine"]["nproc"]
    for config, res in doc["resources"].items():
        check(number(res["heavy_writes_per_s"], 1e3, 1e9), f"{config}: heavy load rate {res['heavy_writes_per_s']}")
        if config == "none":
            continue
        for window in ("idle", "idle_1000_processes", "idle_1000_writers", "heavy"):
            check(number(res[window]["cpu_pct"], 0, 100 * nproc), f"{config}: {window} CPU {res[window]['cpu_pct']}")
        check(number(res["memory_mib"]["VmRSS"], 0.1, 4096), f"{config}: RSS {res['memory_mib']}")
        programs = res["bpf_stats"]
        for window in ("pwrite_load", "append_4k_load", "append_line_load"):
            check(any((p.get(window) or {}).get("run_cnt", 0) > 0 and number(p[window]["ns_per_run"], 1, 1e6)
                      for p in programs), f"{config}: no program ran under {window}: {programs}")
    check("top" in doc["resources"], "no resources measured for top")
    drops = doc["resources"].get("top", {}).get("drops")
    check(isinstance(drops, dict) and all(isinstance(drops.get(k), int) and drops[k] >= 0 for k in DROP_KEYS),
          f"top drops {drops}")

    # The parts of the write path (issue 21): every part measured on every
    # workload of the phase, beside the whole agent.
    parts = doc.get("parts")
    if configs["agent"]["available"]:
        check(isinstance(parts, dict), "no parts phase")
        rows = {row["name"]: row for row in (parts or {}).get("rows", [])}
        check(sorted(rows) == sorted(PART_WORKLOADS), f"parts rows {sorted(rows)}")
        for name, row in rows.items():
            check(number(row["none"], 10, 1e9), f"parts/{name}: none {row['none']}")
            check(number(row["whole_added"], -1e9, 1e9), f"parts/{name}: whole {row['whole_added']}")
            check(sorted(row["parts"]) == sorted(PARTS), f"parts/{name}: parts {sorted(row['parts'])}")
            check(all(number(v, -1e9, 1e9) for v in row["parts"].values()), f"parts/{name}: {row['parts']}")
        check("| dirty-folio-hook |" in printed, "markdown has no parts table")

    detection = doc["detection"]
    if detection["available"]:
        check(detection["runs"] == settings["detection_runs"], "detection runs")
        check(detection["misses"] < detection["runs"], "every detection run missed")
    else:
        check(detection["reason"].startswith("not available"), f"detection reason {detection['reason']}")

    check(len(doc["targets"]) >= 5, "targets missing")
    check(all(t["met"] in (True, False, None) for t in doc["targets"]), "target verdicts")
    check(number(doc["machine"]["loadavg_start"][0], 0, 1e4), "load average recorded")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", required=True)
    parser.add_argument("--build-dir", required=True)
    args = parser.parse_args()
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            print("bench_smoke: FAIL: needs root, and CI=true", file=sys.stderr)
            return 1
        print("bench_smoke: skipped: needs root (loads BPF, mounts, cgroups)", file=sys.stderr)
        return 77
    json_path = os.path.join(args.build_dir, "bench", "smoke.json")
    if os.path.exists(json_path):
        os.unlink(json_path)
    result = subprocess.run([sys.executable, args.bench, "--quick", "--build-dir", args.build_dir,
                             "--json", json_path], stdout=subprocess.PIPE, text=True, timeout=540)
    print(result.stdout)
    if result.returncode != 0:
        print(f"bench_smoke: FAIL: scripts/bench --quick exited {result.returncode}", file=sys.stderr)
        return 1
    with open(json_path) as f:
        check_results(json.load(f), result.stdout)
    for failure in failures:
        print(f"bench_smoke: FAIL: {failure}", file=sys.stderr)
    if not failures:
        print("bench_smoke: the harness ran every workload under every configuration")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
