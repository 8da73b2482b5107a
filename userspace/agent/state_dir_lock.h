// One agent per state dir. Two agents on one state.json would each release
// the other's live throttles as a "previous agent's" and overwrite its record,
// so the second refuses to start, naming the pid that holds the lock.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

namespace diskwatch {

class StateDirLock {
public:
    // flock(LOCK_EX | LOCK_NB) on <state_dir>/agent.lock (created, with the
    // directory), which then holds our pid. nullptr with the reason in *error,
    // "... is used by another agent (pid N) ..." when it is held.
    static std::unique_ptr<StateDirLock> acquire(const std::string &state_dir, std::string *error);
    ~StateDirLock();
    StateDirLock(const StateDirLock &) = delete;
    StateDirLock &operator=(const StateDirLock &) = delete;

private:
    explicit StateDirLock(int fd) : fd_(fd) {}
    int fd_ = -1;  // close-on-exec: the guard and any child never hold it
};

}  // namespace diskwatch
