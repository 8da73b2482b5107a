#include "recorder/record_store.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <system_error>

#include "vocabulary/errno_text.h"

namespace diskwatch {

namespace {

// On-disk layout, little-endian as the host (the store never leaves its machine).
constexpr char kSegmentMagic[8] = {'D', 'W', 'S', 'E', 'G', 0, 0, 1};
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kRecordMagic = 0x31525744;  // "DWR1"
constexpr uint64_t kPage = 4096;
constexpr uint32_t kMaxRawBytes = 64u << 20;  // a payload bigger than this is corruption

struct SegmentHeader {
    char magic[8];
    uint32_t version;
    uint32_t tier;
    uint64_t generation;  // 0: reserved, never written
    uint64_t segment_bytes;
    int64_t created_ms;
    uint32_t crc;  // of the header with crc = 0
    uint32_t pad;
    uint8_t reserved[16];
};
static_assert(sizeof(SegmentHeader) == 64);

struct RecordHeader {
    uint32_t magic;
    uint32_t stored_len;  // compressed payload bytes that follow
    uint32_t raw_len;     // the payload's size once decompressed
    uint32_t kind;
    uint64_t generation;  // the segment's: a reused segment's old records differ
    int64_t ts_ms;
    uint32_t crc;  // of the header with crc = 0, then of the stored bytes
    uint32_t pad;
};
static_assert(sizeof(RecordHeader) == 40);

uint64_t align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

uint32_t header_crc(SegmentHeader header)
{
    header.crc = 0;
    return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef *>(&header), sizeof header));
}

uint32_t record_crc(RecordHeader header, const char *stored)
{
    header.crc = 0;
    uLong crc = crc32(0, reinterpret_cast<const Bytef *>(&header), sizeof header);
    return static_cast<uint32_t>(crc32(crc, reinterpret_cast<const Bytef *>(stored), header.stored_len));
}

std::string segment_path(const std::string &dir, RecordTier tier, size_t index)
{
    char name[32];
    std::snprintf(name, sizeof name, "%s.%02zu", std::string(to_string(tier)).c_str(), index);
    return dir + "/" + name;
}

bool read_all(int fd, void *buffer, size_t size, uint64_t offset)
{
    auto *out = static_cast<char *>(buffer);
    while (size > 0) {
        const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        out += n;
        size -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
    return true;
}

bool write_all(int fd, const void *buffer, size_t size, uint64_t offset)
{
    const auto *in = static_cast<const char *>(buffer);
    while (size > 0) {
        const ssize_t n = ::pwrite(fd, in, size, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return false;
        }
        in += n;
        size -= static_cast<size_t>(n);
        offset += static_cast<uint64_t>(n);
    }
    return true;
}

// The filesystem under `dir`, and why a reservation there is no guarantee:
// a copy-on-write filesystem writes every overwrite to new blocks, so space
// allocated in advance can still run out.
void describe_filesystem(const std::string &dir, Reservation *reservation)
{
    struct statfs fs {};
    if (::statfs(dir.c_str(), &fs) != 0)
        return;
    switch (static_cast<unsigned long>(fs.f_type)) {
    case EXT4_SUPER_MAGIC: reservation->filesystem = "ext4"; break;  // also ext2/ext3
    case XFS_SUPER_MAGIC: reservation->filesystem = "xfs"; break;
    case BTRFS_SUPER_MAGIC:
        reservation->filesystem = "btrfs";
        reservation->caveat = "btrfs is copy-on-write: the recorder's files are marked nocow, which holds only "
                              "while no snapshot shares them";
        break;
    case 0x2fc12fc1:
        reservation->filesystem = "zfs";
        reservation->caveat = "zfs is copy-on-write: space allocated in advance is no guarantee; give the "
                              "recorder a reserved dataset or another filesystem";
        break;
    case 0xca451a4e:
        reservation->filesystem = "bcachefs";
        reservation->caveat = "bcachefs is copy-on-write: space allocated in advance is no guarantee";
        break;
    case F2FS_SUPER_MAGIC:
        reservation->filesystem = "f2fs";
        reservation->caveat = "f2fs is log-structured: space allocated in advance is no guarantee";
        break;
    case NILFS_SUPER_MAGIC:
        reservation->filesystem = "nilfs2";
        reservation->caveat = "nilfs2 is log-structured: space allocated in advance is no guarantee";
        break;
    case TMPFS_MAGIC:
        reservation->filesystem = "tmpfs";
        reservation->caveat = "tmpfs is memory: the record is lost at reboot";
        break;
    case OVERLAYFS_SUPER_MAGIC:
        reservation->filesystem = "overlay";
        reservation->caveat = "an overlay's upper layer may be copy-on-write; put the recorder on a volume";
        break;
    default: {
        char hex[32];
        std::snprintf(hex, sizeof hex, "0x%lx", static_cast<unsigned long>(fs.f_type));
        reservation->filesystem = hex;
    }
    }
}

// Makes one segment file of `size` bytes with its blocks allocated.
bool reserve_segment(const std::string &path, uint64_t size, bool nocow, std::string *error)
{
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        *error = "cannot make " + path + ": " + errno_text(errno);
        return false;
    }
    if (nocow) {
        // Only an empty file can change its copy-on-write mode.
        int flags = 0;
        if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
            flags |= FS_NOCOW_FL;
            (void)::ioctl(fd, FS_IOC_SETFLAGS, &flags);
        }
    }
    bool ok = ::fallocate(fd, 0, 0, static_cast<off_t>(size)) == 0;
    if (!ok && (errno == EOPNOTSUPP || errno == ENOSYS)) {
        // Filesystems without fallocate: zeros, written, are allocated too.
        static const std::vector<char> zeros(1 << 20, 0);
        ok = true;
        for (uint64_t off = 0; ok && off < size; off += zeros.size())
            ok = write_all(fd, zeros.data(), std::min<uint64_t>(zeros.size(), size - off), off);
    }
    if (!ok) {
        *error = "cannot reserve " + std::to_string(size >> 20) + " MiB for " + path + ": " + errno_text(errno);
        ::close(fd);
        ::unlink(path.c_str());
        return false;
    }
    ::fsync(fd);
    ::close(fd);
    return true;
}

std::optional<SegmentHeader> read_segment_header(int fd)
{
    SegmentHeader header {};
    if (!read_all(fd, &header, sizeof header, 0))
        return std::nullopt;
    if (std::memcmp(header.magic, kSegmentMagic, sizeof kSegmentMagic) != 0 || header.version != kFormatVersion ||
        header.crc != header_crc(header))
        return std::nullopt;
    return header;
}

// Walks a segment's records (in `data`, the whole file) while they are whole
// and of its generation; calls visit for each. Returns the offset after the
// last whole one, and in *torn the offset of a torn one (0: none).
template <typename Visit>
uint64_t walk_records(const std::string &data, uint64_t generation, uint64_t *torn, Visit &&visit)
{
    uint64_t offset = sizeof(SegmentHeader);
    *torn = 0;
    while (offset + sizeof(RecordHeader) <= data.size()) {
        RecordHeader header {};
        std::memcpy(&header, data.data() + offset, sizeof header);
        if (header.magic != kRecordMagic || header.generation != generation)
            break;  // the end: zeros, or a reused segment's older records
        const uint64_t size = sizeof header + uint64_t{header.stored_len};
        if (offset + size > data.size() || header.raw_len > kMaxRawBytes ||
            header.crc != record_crc(header, data.data() + offset + sizeof header)) {
            *torn = offset;
            break;
        }
        visit(header, data.data() + offset + sizeof header);
        offset += align8(size);
    }
    return offset;
}

}  // namespace

std::string_view to_string(RecordTier tier)
{
    return tier == RecordTier::fine ? "fine" : "coarse";
}

uint64_t StoreLayout::segment_bytes(RecordTier tier) const
{
    const double share = tier == RecordTier::coarse ? coarse_share : 1.0 - coarse_share;
    const uint64_t per = static_cast<uint64_t>(static_cast<double>(max_bytes) * share) / std::max(1u, segments_per_tier);
    return std::max<uint64_t>(kPage * 4, per / kPage * kPage);
}

std::unique_ptr<RecordWriter> RecordWriter::open(const std::string &dir, const StoreLayout &layout, std::string *error,
                                                 std::string *notice)
{
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        *error = "cannot make the recorder's directory " + dir + ": " + ec.message();
        return nullptr;
    }
    ::chmod(dir.c_str(), 0700);  // what was written, by whom: root's business only
    std::unique_ptr<RecordWriter> writer(new RecordWriter());
    writer->dir_ = dir;
    const std::string lock_path = dir + "/recorder.lock";
    writer->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (writer->lock_fd_ < 0) {
        *error = "cannot open " + lock_path + ": " + errno_text(errno);
        return nullptr;
    }
    if (::flock(writer->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        *error = errno == EWOULDBLOCK ? "another agent is recording into " + dir
                                      : "cannot lock " + lock_path + ": " + errno_text(errno);
        return nullptr;
    }
    describe_filesystem(dir, &writer->reservation_);
    const bool nocow = writer->reservation_.filesystem == "btrfs";

    // What is there: a segment that is a regular file of this layout's size
    // is kept; one that is not (another size, truncated, a symlink, a FIFO)
    // is made again, alone; those past this layout's count go. A store of a
    // newer format is left as it is, and nothing is recorded.
    size_t remade = 0;
    uint64_t needed = 0;
    for (RecordTier which : {RecordTier::fine, RecordTier::coarse})
        for (size_t i = 0; i < 256; ++i) {
            const std::string path = segment_path(dir, which, i);
            struct stat st {};
            const bool exists = ::lstat(path.c_str(), &st) == 0;
            const bool wanted = i < layout.segments_per_tier;
            if (exists && S_ISREG(st.st_mode)) {
                const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                SegmentHeader header {};
                if (fd >= 0 && read_all(fd, &header, sizeof header, 0) &&
                    std::memcmp(header.magic, kSegmentMagic, sizeof kSegmentMagic) == 0 && header.version > kFormatVersion) {
                    ::close(fd);
                    *error = "the record in " + dir + " was written by a newer ebpf-diskwatch (format " +
                             std::to_string(header.version) + "): not recording into it; move it away, or give "
                             "this agent another recorder.path";
                    return nullptr;
                }
                if (fd >= 0)
                    ::close(fd);
            }
            const bool fits = exists && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == layout.segment_bytes(which);
            if (exists && (!wanted || !fits)) {
                ::unlink(path.c_str());
                ++remade;
            }
            if (wanted && !fits)
                needed += layout.segment_bytes(which);
        }
    if (remade && notice)
        *notice = std::to_string(remade) + " file(s) in " + dir +
                  " did not fit this store (its size changed, or they were damaged): made again, their history lost";
    // The recorder must never be what fills a disk: it reserves only where
    // 5% of the filesystem stays free after it.
    if (needed > 0) {
        struct statvfs fs {};
        if (::statvfs(dir.c_str(), &fs) == 0) {
            const uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
            const uint64_t keep = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize / 20;
            if (available < needed + keep) {
                *error = "not enough space in " + dir + " to reserve " + std::to_string(needed >> 20) + " MiB (" +
                         std::to_string(available >> 20) + " MiB free, 5% of the filesystem kept free): free "
                         "space, or give recorder.path another disk";
                return nullptr;
            }
        }
    }
    std::vector<std::string> made;  // by this call: removed again if the rest cannot be
    auto undo = [&] {
        for (const auto &path : made)
            ::unlink(path.c_str());
    };

    for (RecordTier which : {RecordTier::fine, RecordTier::coarse}) {
        Tier &tier = writer->tiers_[static_cast<size_t>(which)];
        tier.segment_bytes = layout.segment_bytes(which);
        uint64_t newest = 0;
        for (size_t i = 0; i < layout.segments_per_tier; ++i) {
            const std::string path = segment_path(dir, which, i);
            if (::access(path.c_str(), F_OK) != 0) {
                if (!reserve_segment(path, tier.segment_bytes, nocow, error)) {
                    undo();
                    return nullptr;
                }
                made.push_back(path);
            }
            Segment segment;
            segment.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
            if (segment.fd < 0) {
                *error = "cannot open " + path + ": " + errno_text(errno);
                undo();
                return nullptr;
            }
            if (auto header = read_segment_header(segment.fd);
                header && header->tier == static_cast<uint32_t>(which) && header->segment_bytes == tier.segment_bytes) {
                std::string data(tier.segment_bytes, '\0');
                if (read_all(segment.fd, data.data(), data.size(), 0)) {
                    uint64_t torn = 0;
                    segment.generation = header->generation;
                    segment.end = walk_records(data, header->generation, &torn,
                                               [&segment](const RecordHeader &record, const char *) {
                                                   segment.newest_ms = std::max(segment.newest_ms, record.ts_ms);
                                               });
                    if (segment.generation > newest) {
                        newest = segment.generation;
                        tier.current = i;
                    }
                }
            }
            tier.segments.push_back(segment);
        }
        tier.next_generation = newest + 1;
    }
    uint64_t allocated = 0, wanted = 0;
    for (const Tier &tier : writer->tiers_)
        for (const Segment &segment : tier.segments) {
            struct stat st {};
            if (::fstat(segment.fd, &st) == 0)
                allocated += static_cast<uint64_t>(st.st_blocks) * 512;
            wanted += tier.segment_bytes;
        }
    writer->reservation_.reserved = allocated >= wanted;
    if (!writer->reservation_.reserved && writer->reservation_.caveat.empty())
        writer->reservation_.caveat = "the filesystem allocated " + std::to_string(allocated >> 20) + " of " +
                                      std::to_string(wanted >> 20) + " MiB asked for";
    return writer;
}

RecordWriter::~RecordWriter()
{
    sync();
    for (Tier &tier : tiers_)
        for (Segment &segment : tier.segments)
            if (segment.fd >= 0)
                ::close(segment.fd);
    if (lock_fd_ >= 0)
        ::close(lock_fd_);
}

bool RecordWriter::start_segment(Tier &tier, RecordTier which, std::string *error)
{
    // The current segment is full (or none was ever written): the next one
    // in the ring, which is the oldest, is reused.
    const bool fresh = tier.segments[tier.current].generation == 0;
    const size_t next = fresh ? tier.current : (tier.current + 1) % tier.segments.size();
    Segment &segment = tier.segments[next];
    SegmentHeader header {};
    std::memcpy(header.magic, kSegmentMagic, sizeof kSegmentMagic);
    header.version = kFormatVersion;
    header.tier = static_cast<uint32_t>(which);
    header.generation = tier.next_generation;
    header.segment_bytes = tier.segment_bytes;
    header.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    header.crc = header_crc(header);
    if (!write_all(segment.fd, &header, sizeof header, 0)) {
        *error = "cannot write the recorder's " + std::string(to_string(which)) + " segment: " + errno_text(errno);
        return false;
    }
    segment.generation = tier.next_generation++;
    segment.end = sizeof header;
    segment.newest_ms = 0;
    segment.dirty = true;
    tier.current = next;
    return true;
}

bool RecordWriter::append(RecordTier which, RecordKind kind, int64_t ts_ms, std::string_view payload,
                          std::string *error)
{
    Tier &tier = tiers_[static_cast<size_t>(which)];
    if (payload.size() > kMaxRawBytes) {
        *error = "a record of " + std::to_string(payload.size()) + " bytes is too large";
        return false;
    }
    uLongf stored = compressBound(static_cast<uLong>(payload.size()));
    std::string buffer(sizeof(RecordHeader) + stored, '\0');
    if (compress2(reinterpret_cast<Bytef *>(buffer.data() + sizeof(RecordHeader)), &stored,
                  reinterpret_cast<const Bytef *>(payload.data()), static_cast<uLong>(payload.size()), 6) != Z_OK) {
        *error = "cannot compress a record";
        return false;
    }
    const uint64_t size = sizeof(RecordHeader) + stored;
    if (size > (tier.segment_bytes - sizeof(SegmentHeader)) / 4) {
        *error = "a record of " + std::to_string(size) + " bytes does not fit a quarter of a " +
                 std::to_string(tier.segment_bytes >> 10) + " KiB segment";
        return false;
    }
    Segment *segment = &tier.segments[tier.current];
    if (segment->generation == 0 || segment->end + align8(size) > tier.segment_bytes) {
        if (!start_segment(tier, which, error))
            return false;
        segment = &tier.segments[tier.current];
    }
    RecordHeader header {};
    header.magic = kRecordMagic;
    header.stored_len = static_cast<uint32_t>(stored);
    header.raw_len = static_cast<uint32_t>(payload.size());
    header.kind = static_cast<uint32_t>(kind);
    header.generation = segment->generation;
    header.ts_ms = ts_ms;
    header.crc = record_crc(header, buffer.data() + sizeof header);
    std::memcpy(buffer.data(), &header, sizeof header);
    buffer.resize(align8(size), '\0');
    // One write per record: the segment's blocks are already allocated, so
    // this needs no free space on the filesystem.
    if (!write_all(segment->fd, buffer.data(), buffer.size(), segment->end)) {
        *error = "cannot write the recorder's " + std::string(to_string(which)) + " segment: " + errno_text(errno);
        return false;
    }
    // Writeback starts now, without waiting for it: a writer killed later
    // loses nothing (the page cache has it), and fdatasync (sync()) has
    // little left to wait for. Waiting here, under a heavy write load on the
    // same disk, stalled the recorder for seconds.
    (void)::sync_file_range(segment->fd, static_cast<off_t>(segment->end), static_cast<off_t>(buffer.size()),
                            SYNC_FILE_RANGE_WRITE);
    segment->end += buffer.size();
    segment->newest_ms = std::max(segment->newest_ms, ts_ms);
    segment->dirty = true;
    return true;
}

void RecordWriter::expire(int64_t before_ms)
{
    for (Tier &tier : tiers_)
        for (size_t i = 0; i < tier.segments.size(); ++i) {
            Segment &segment = tier.segments[i];
            if (i == tier.current || segment.generation == 0 || segment.newest_ms >= before_ms)
                continue;
            const SegmentHeader empty {};
            if (write_all(segment.fd, &empty, sizeof empty, 0)) {
                segment.generation = 0;
                segment.end = 0;
                segment.newest_ms = 0;
                segment.dirty = true;
            }
        }
}

bool RecordWriter::gone() const
{
    struct stat st {};
    return ::fstat(lock_fd_, &st) != 0 || st.st_nlink == 0;
}

void RecordWriter::sync()
{
    for (Tier &tier : tiers_)
        for (Segment &segment : tier.segments)
            if (segment.dirty && segment.fd >= 0) {
                ::fdatasync(segment.fd);
                segment.dirty = false;
            }
}

StoreReading read_store(const std::string &dir, int64_t from_ms, int64_t to_ms, std::optional<RecordTier> only,
                        const std::function<void(StoredRecord &&)> &visit, const std::function<bool(int64_t)> &want)
{
    StoreReading reading;
    if (::access(dir.c_str(), F_OK) != 0) {
        reading.warnings.push_back("no flight record in " + dir + ": " + errno_text(errno));
        return reading;
    }
    auto deliver = [&](StoredRecord &&record) {
        if (visit)
            visit(std::move(record));
        else
            reading.records.push_back(std::move(record));
    };
    for (RecordTier which : {RecordTier::fine, RecordTier::coarse}) {
        if (only && *only != which)
            continue;
        // The segments in the order they were written (their generations),
        // then each one's records: oldest first, one segment in memory at a time.
        std::vector<std::pair<uint64_t, std::string>> segments;
        for (size_t i = 0; i < 256; ++i) {
            const std::string path = segment_path(dir, which, i);
            // O_NONBLOCK: a FIFO put in the store's place must not hang a reader.
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
            if (fd < 0) {
                if (errno != ENOENT)
                    reading.warnings.push_back("cannot read " + path + ": " + errno_text(errno));
                continue;  // a missing segment hides none after it
            }
            struct stat st {};
            if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                ::close(fd);
                reading.warnings.push_back(path + " is not a regular file: skipped");
                continue;
            }
            reading.bytes_on_disk += static_cast<uint64_t>(st.st_blocks) * 512;
            SegmentHeader raw {};
            const bool has_header = read_all(fd, &raw, sizeof raw, 0);
            const auto header = read_segment_header(fd);
            ::close(fd);
            if (header && header->generation != 0 && header->segment_bytes == static_cast<uint64_t>(st.st_size))
                segments.emplace_back(header->generation, path);
            else if (has_header && std::memcmp(raw.magic, kSegmentMagic, sizeof kSegmentMagic) == 0 &&
                     raw.version > kFormatVersion)
                reading.warnings.push_back(path + " was written by a newer ebpf-diskwatch (format " +
                                           std::to_string(raw.version) + "): skipped");
            else if (header && header->generation != 0)
                reading.warnings.push_back(path + " is not the size its header says (truncated?): skipped");
            // else never written: nothing to say
        }
        std::sort(segments.begin(), segments.end());
        for (const auto &segment : segments) {
            // Not a structured binding: the lambda below captures them (clang 14 cannot).
            const uint64_t generation = segment.first;
            const std::string &path = segment.second;
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
            struct stat st {};
            if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                reading.warnings.push_back("cannot read " + path + ": " + errno_text(errno));
                if (fd >= 0)
                    ::close(fd);
                continue;
            }
            std::string data(static_cast<size_t>(st.st_size), '\0');
            const bool read_ok = read_all(fd, data.data(), data.size(), 0);
            ::close(fd);
            const auto header = read_ok ? std::optional<SegmentHeader>([&] {
                SegmentHeader h {};
                std::memcpy(&h, data.data(), sizeof h);
                return h;
            }()) : std::nullopt;
            if (!read_ok || header->generation != generation) {
                if (!read_ok)
                    reading.warnings.push_back("cannot read " + path + ": " + errno_text(errno));
                continue;  // reused since its header was read: a writer is busy; the next reading has it
            }
            uint64_t torn = 0;
            walk_records(data, generation, &torn, [&](const RecordHeader &record, const char *stored) {
                if (!reading.oldest_ms || record.ts_ms < *reading.oldest_ms)
                    reading.oldest_ms = record.ts_ms;
                if (!reading.newest_ms || record.ts_ms > *reading.newest_ms)
                    reading.newest_ms = record.ts_ms;
                if (record.ts_ms < from_ms || record.ts_ms > to_ms || (want && !want(record.ts_ms)))
                    return;
                StoredRecord out;
                out.tier = which;
                out.kind = static_cast<RecordKind>(record.kind);
                out.ts_ms = record.ts_ms;
                out.generation = record.generation;
                out.payload.resize(record.raw_len);
                uLongf raw = record.raw_len;
                if (uncompress(reinterpret_cast<Bytef *>(out.payload.data()), &raw,
                               reinterpret_cast<const Bytef *>(stored), record.stored_len) != Z_OK ||
                    raw != record.raw_len) {
                    reading.warnings.push_back(path + ": a record that does not decompress was skipped");
                    return;
                }
                deliver(std::move(out));
            });
            if (torn)
                reading.warnings.push_back(path + ": a torn record at offset " + std::to_string(torn) +
                                           " was skipped, with the rest of that segment (an agent stopped "
                                           "mid-write, or is writing it now)");
        }
    }
    return reading;
}

}  // namespace diskwatch
