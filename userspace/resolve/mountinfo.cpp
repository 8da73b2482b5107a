#include "resolve/mountinfo.h"

#include <sys/sysmacros.h>

#include <charconv>

#include "resolve/kernel_files.h"

namespace diskwatch {

DeviceNumber DeviceNumber::from_stat(uint64_t st_dev)
{
    return {static_cast<uint32_t>(::major(st_dev)), static_cast<uint32_t>(::minor(st_dev)) & 0xfffff};
}

std::string DeviceNumber::to_string() const { return std::to_string(major) + ":" + std::to_string(minor); }

// mountinfo escapes space, tab, newline and backslash as \ooo; option values
// (seq_show_option) also , and =.
std::string decode_mountinfo_escapes(std::string_view field)
{
    std::string out;
    out.reserve(field.size());
    for (size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            const char a = field[i + 1], b = field[i + 2], c = field[i + 3];
            if (a >= '0' && a <= '3' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
                out.push_back(static_cast<char>(((a - '0') << 6) | ((b - '0') << 3) | (c - '0')));
                i += 3;
                continue;
            }
        }
        out.push_back(field[i]);
    }
    return out;
}

namespace {

std::vector<std::string> split_commas(std::string_view text)
{
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string_view::npos)
            comma = text.size();
        parts.emplace_back(text.substr(start, comma - start));
        start = comma + 1;
    }
    return parts;
}

std::vector<std::string_view> split_spaces(std::string_view line)
{
    std::vector<std::string_view> fields;
    size_t pos = 0;
    while (pos < line.size()) {
        while (pos < line.size() && line[pos] == ' ')
            ++pos;
        if (pos >= line.size())
            break;
        size_t end = line.find(' ', pos);
        if (end == std::string_view::npos)
            end = line.size();
        fields.push_back(line.substr(pos, end - pos));
        pos = end;
    }
    return fields;
}

template <typename T> bool parse_number(std::string_view text, T &out)
{
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && ptr == text.data() + text.size();
}

std::optional<MountEntry> parse_line(std::string_view line)
{
    // 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    auto fields = split_spaces(line);
    size_t separator = 0;
    for (size_t i = 6; i < fields.size(); ++i) {
        if (fields[i] == "-") {
            separator = i;
            break;
        }
    }
    // The separator follows at least six fields and is followed by the fstype.
    if (separator == 0 || separator + 1 >= fields.size())
        return std::nullopt;
    MountEntry entry;
    if (!parse_number(fields[0], entry.mount_id) || !parse_number(fields[1], entry.parent_id))
        return std::nullopt;
    auto colon = fields[2].find(':');
    if (colon == std::string_view::npos || !parse_number(fields[2].substr(0, colon), entry.dev.major) ||
        !parse_number(fields[2].substr(colon + 1), entry.dev.minor))
        return std::nullopt;
    entry.root = decode_mountinfo_escapes(fields[3]);
    entry.mount_point = decode_mountinfo_escapes(fields[4]);
    entry.fstype = std::string(fields[separator + 1]);
    if (separator + 2 < fields.size())
        entry.source = decode_mountinfo_escapes(fields[separator + 2]);
    entry.mount_options = split_commas(fields[5]);
    if (separator + 3 < fields.size())
        entry.super_options = split_commas(fields[separator + 3]);
    return entry;
}

}  // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text, size_t *skipped_lines)
{
    std::vector<MountEntry> entries;
    size_t skipped = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty())
            continue;
        if (auto entry = parse_line(line))
            entries.push_back(std::move(*entry));
        else
            ++skipped;
    }
    if (skipped_lines)
        *skipped_lines = skipped;
    return entries;
}

bool hidden_by_default(std::string_view fstype, std::string_view mount_point)
{
    // node_exporter's default fs-types-exclude (1.x), the same list.
    static constexpr std::string_view hidden_types[] = {
        "autofs",  "binfmt_misc", "bpf",   "cgroup", "cgroup2",    "configfs", "debugfs",  "devpts",
        "devtmpfs", "fusectl",    "hugetlbfs", "iso9660", "mqueue", "nsfs",     "overlay",  "proc",
        "procfs",  "pstore",      "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "erofs", "sysfs",
        "tracefs"};
    for (const auto hidden : hidden_types)
        if (fstype == hidden)
            return true;
    // The engines' own tmpfs mounts below their roots (secrets, shm). Never a
    // disk mounted there (a volumes or overlay2 disk of its own is common, and
    // its filling is what the tool exists to see: hostile review of issue 15).
    if (fstype == "tmpfs")
        for (const std::string_view root : {std::string_view("/var/lib/docker/"),
                                            std::string_view("/var/lib/containers/storage/")})
            if (mount_point.size() > root.size() && mount_point.compare(0, root.size(), root) == 0)
                return true;
    // <anything>/containers/<64 hex>/mounts/shm
    constexpr std::string_view shm = "/mounts/shm";
    constexpr size_t id_size = 64;
    constexpr std::string_view containers = "/containers/";
    if (mount_point.size() < containers.size() + id_size + shm.size() ||
        mount_point.substr(mount_point.size() - shm.size()) != shm)
        return false;
    const std::string_view id = mount_point.substr(mount_point.size() - shm.size() - id_size, id_size);
    const std::string_view before = mount_point.substr(0, mount_point.size() - shm.size() - id_size);
    if (before.size() < containers.size() || before.substr(before.size() - containers.size()) != containers)
        return false;
    for (const char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

MountTable MountTable::load(const std::string &path)
{
    // Unreadable: an empty table, as when nothing is mounted that we know.
    return MountTable(parse_mountinfo(read_kernel_file(path).text));
}

const MountEntry *MountTable::find_by_device(DeviceNumber dev) const
{
    const MountEntry *bind_mount = nullptr;
    for (const auto &entry : entries_) {
        if (!(entry.dev == dev))
            continue;
        if (entry.root == "/")
            return &entry;
        if (!bind_mount)
            bind_mount = &entry;
    }
    return bind_mount;
}

const MountEntry *MountTable::find_by_mount_point(std::string_view mount_point) const
{
    // The last mount on a path hides the earlier ones.
    const MountEntry *found = nullptr;
    for (const auto &entry : entries_)
        if (entry.mount_point == mount_point)
            found = &entry;
    return found;
}

const MountEntry *MountTable::find_cgroup2() const
{
    for (const auto &entry : entries_)
        if (entry.fstype == "cgroup2")
            return &entry;
    return nullptr;
}

}  // namespace diskwatch
