"""Seccomp profiles (Docker/OCI JSON, as podman, containerd and the kubelet read them) for build pods.

    python scripts/seccomp_profiles.py            # rewrite charts/reprolab/files/seccomp/reprolab-build.json
    python scripts/seccomp_profiles.py --check    # exit 1 when the committed file has drifted

``containerd_default(caps)`` is the profile containerd (and so most managed clusters) applies for
``seccompProfile: RuntimeDefault``, written from the rules of containerd's ``contrib/seccomp``
defaults for x86-64: an allow list, namespace-creating ``clone`` flags refused and ``clone3``
answering ENOSYS unless the container holds CAP_SYS_ADMIN. The tests give it to podman to run the
build pod the way a containerd node would.

``build_profile()`` is the Localhost profile the chart ships for build pods (``reprolab-build.json``):
containerd's default plus exactly what rootless buildah needs to make its own user namespace and
mount its chroot inside it (unshare, clone/clone3 with namespace flags, mount, umount2, setns,
pivot_root). Those calls stay limited by the kernel to the new user namespace, whose ids map to the
pod's subordinate range: they give no power over the node's own ids.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_PROFILE = ROOT / "charts" / "reprolab" / "files" / "seccomp" / "reprolab-build.json"

# containerd's unconditional allow list (x86-64 view; names unknown to the kernel are ignored by libseccomp).
_ALLOWED = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime
clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_time64 futex_waitv futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid
getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch
inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit io_uring_enter io_uring_register
io_uring_setup ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32
lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64
madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall
mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 poll
ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64
pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg
recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir
rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask
sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync
sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask uname unlink
unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
ptrace arch_prctl modify_ldt
""".split()

# Extra calls containerd allows only when the container's bounding set holds the capability.
_BY_CAPABILITY = {
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
    "CAP_SYS_ADMIN": ["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                      "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree",
                      "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
                      "syslog", "umount", "umount2", "unshare"],
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_MODULE": ["delete_module", "init_module", "finit_module"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_PTRACE": ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_settime64"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYSLOG": ["syslog"],
    "CAP_BPF": ["bpf"],
    "CAP_PERFMON": ["perf_event_open"],
}

# CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP
_NAMESPACE_FLAGS = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000
_ENOSYS = 38

# What rootless buildah (user namespace + chroot isolation, vfs) needs beyond containerd's default.
BUILD_EXTRA = ["clone", "clone3", "mount", "pivot_root", "setns", "umount2", "unshare"]


def _allow(names: list[str], args: list[dict] | None = None) -> dict:
    return {"names": sorted(names), "action": "SCMP_ACT_ALLOW", "args": args or []}


def containerd_default(capabilities: list[str]) -> dict:
    """containerd's RuntimeDefault profile for a container whose bounding set is ``capabilities``."""
    caps = {c if c.startswith("CAP_") else f"CAP_{c}" for c in capabilities}
    syscalls = [_allow(_ALLOWED)]
    syscalls += [_allow(["personality"], [{"index": 0, "value": v, "valueTwo": 0, "op": "SCMP_CMP_EQ"}])
                 for v in (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)]
    syscalls += [_allow(_BY_CAPABILITY[c]) for c in sorted(caps) if c in _BY_CAPABILITY]
    if "CAP_SYS_ADMIN" not in caps:
        syscalls.append(_allow(["clone"], [{"index": 0, "value": _NAMESPACE_FLAGS, "valueTwo": 0,
                                            "op": "SCMP_CMP_MASKED_EQ"}]))
        # ENOSYS, not EPERM: glibc then falls back to clone(2), whose flags the rule above can inspect.
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": _ENOSYS, "args": []})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": syscalls}


def build_profile() -> dict:
    """The chart's Localhost profile for build pods: containerd's default for the build container's
    capabilities (SETUID, SETGID, SYS_CHROOT) plus the calls of :data:`BUILD_EXTRA`."""
    profile = containerd_default(["SETUID", "SETGID", "SYS_CHROOT"])
    profile["syscalls"] = [s for s in profile["syscalls"] if s["names"] not in (["clone"], ["clone3"])]
    profile["syscalls"].append(_allow(BUILD_EXTRA))
    return profile


def dump(profile: dict) -> str:
    return json.dumps(profile, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = dump(build_profile())
    if argv[:1] == ["--check"]:
        if not BUILD_PROFILE.exists() or BUILD_PROFILE.read_text() != text:
            print(f"{BUILD_PROFILE} is out of date: run python scripts/seccomp_profiles.py", file=sys.stderr)
            return 1
        return 0
    BUILD_PROFILE.parent.mkdir(parents=True, exist_ok=True)
    BUILD_PROFILE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
