"""The confinement of a training script: what its process can reach, applied to itself.

The script runner calls `confine` first thing, before it imports the user's file,
while it is still one thread (Landlock and no_new_privs bind the calling thread and
what it starts later). In order:

1. no_new_privs, so nothing it executes gains privileges (setuid binaries ...);
2. a Landlock ruleset (Linux 5.13+): read and execute on the interpreter, the
   Python path and system folders, read-write on the run folder and nothing else,
   so the home's admin.token, server.key, metadata database, artifact store and
   other runs' folders are out of reach even for root. Where the kernel has them it
   also refuses TCP connect/bind (unless the network is allowed) and signals or
   abstract unix sockets to processes outside the sandbox;
3. where the process is root: switch to the configured unprivileged user if that
   user can reach the interpreter, its standard library and modelhub (the run
   folder is handed to it; it reaches it as its working directory, the home above
   stays closed), else drop every capability (uid 0 without capabilities cannot
   override file permissions, and Landlock still holds it to the paths above);
4. a script that keeps the server's uid (root without capabilities, or a server
   not running as root) gets a seccomp filter that makes chmod a no-op and
   refuses chown and setxattr: that uid owns the home.

The returned notes say which, for the run log.

Where Landlock is missing, `SandboxUnavailable` is raised unless the job allows
running without it (MODELHUB_TRAIN_SCRIPT_REQUIRE_LANDLOCK=false).
"""

from __future__ import annotations

import ctypes
import os
import platform
import pwd
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelhub.errors import ModelhubError

# Syscall numbers are the same on every architecture Linux added Landlock to.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_RULE_NET_PORT = 2

PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_PDEATHSIG = 1
LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Filesystem rights, and the ABI that introduced each.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
ABI1_FS = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

# What of /etc a Python program commonly reads; the rest (shadow, ssh keys ...) stays closed.
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "zoneinfo",
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "gai.conf",
    "host.conf",
    "protocols",
    "services",
    "passwd",
    "group",
    "mime.types",
    "os-release",
    "ssl",
    "ca-certificates",
    "pki",
    "matplotlibrc",
)
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/opt")
# Hardware a library may probe: CPU topology, cgroup limits, PCI and GPU devices.
SYS_READ = ("/sys/devices", "/sys/bus", "/sys/class", "/sys/fs/cgroup", "/sys/module")
DEVICES_RW = ("/dev/null", "/dev/zero", "/dev/full", "/dev/shm", "/dev/dri")
DEVICES_READ = ("/dev/random", "/dev/urandom", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat")


class SandboxUnavailable(ModelhubError):
    """The kernel cannot confine a script and the settings require it to."""

    code = "invalid_input"


@dataclass
class Policy:
    """What one script may reach; built from the job's `sandbox` section by `policy_for`."""

    run_dir: Path
    read: list[Path] = field(default_factory=list)
    write: list[Path] = field(default_factory=list)
    protect: list[Path] = field(default_factory=list)
    user: str | None = "nobody"
    require_landlock: bool = True
    network: bool = False


def job_section(
    home: Path, artifacts: str, user: str | None, require_landlock: bool, network: bool
) -> dict[str, Any]:
    """The `sandbox` section of a script run's job file, from the server's settings."""
    protect = [str(home)]
    if "://" not in artifacts:
        protect.append(artifacts)
    return {
        "protect": protect,
        "user": user,
        "require_landlock": require_landlock,
        "network": network,
    }


def policy_for(run_dir: Path, section: dict[str, Any] | None) -> Policy:
    """The policy of a run: its folder writable, the interpreter and system readable.

    A job without a `sandbox` section gets the strictest one (a job file written by
    hand, a test). Readable paths that contain a protected one (the home, the
    artifact store, the folder of every run) are left out.
    """
    section = section or {}
    run_dir = run_dir.resolve()
    protect = [Path(p).resolve() for p in section.get("protect") or []]
    protect.append(run_dir.parent)  # other runs' folders
    read = [Path(p) for p in python_paths()]
    read += [Path(p) for p in (*SYSTEM_READ, *SYS_READ)]
    read += [Path("/etc") / name for name in ETC_FILES]
    read += [Path(p) for p in DEVICES_READ]
    read += [Path(f"/proc/{os.getpid()}"), Path("/proc/driver")]
    write = [run_dir, *(Path(p) for p in DEVICES_RW)]
    write += sorted(Path("/dev").glob("nvidia*"))
    return Policy(
        run_dir=run_dir,
        read=read,
        write=write,
        protect=protect,
        user=section.get("user", "nobody"),
        require_landlock=bool(section.get("require_landlock", True)),
        network=bool(section.get("network", False)),
    )


def python_paths() -> list[str]:
    """The interpreter's prefixes and every folder on sys.path (the modules it may import)."""
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    found.append(os.path.dirname(os.path.realpath(sys.executable)))
    found += [entry for entry in sys.path if entry]
    return found


def _usable(paths: Iterable[Path], protect: list[Path], notes: list[str]) -> list[Path]:
    """Existing paths, resolved, minus those that would open a protected folder."""
    kept: list[Path] = []
    for path in paths:
        try:
            real = path.resolve(strict=True)
        except OSError:
            continue
        if any(real == p or real in p.parents for p in protect):
            notes.append(f"sandbox: not readable, it holds the server's files: {real}")
            continue
        if real not in kept:
            kept.append(real)
    return kept


def confine(policy: Policy) -> list[str]:
    """Apply `policy` to this process (see the module); returns lines for the run log."""
    notes: list[str] = []
    if not sys.platform.startswith("linux"):
        if policy.require_landlock:
            raise SandboxUnavailable(
                f"training scripts run only on Linux with Landlock; this is {platform.system()}"
            )
        notes.append(f"sandbox: none on {platform.system()}: the script reaches what you can")
        return notes
    libc = ctypes.CDLL(None, use_errno=True)
    cap_last = _cap_last()  # /proc is closed once Landlock applies
    user = _target_user(policy) if os.geteuid() == 0 else None
    if user is not None:
        _hand_over(policy.run_dir, user)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    abi = _landlock_abi(libc)
    if abi < 1:
        if policy.require_landlock:
            raise SandboxUnavailable(
                "this kernel has no Landlock (Linux 5.13+ with lsm=landlock), so a training "
                "script could read the server's files; set "
                "MODELHUB_TRAIN_SCRIPT_REQUIRE_LANDLOCK=false to run scripts without it"
            )
        notes.append("sandbox: Landlock unavailable: the script can read every file its user can")
    else:
        notes += _landlock(libc, abi, policy)
    if user is not None:
        _become(libc, user)
        notes.append(f"sandbox: running as {user.pw_name} (uid {user.pw_uid})")
        return notes
    # The script keeps the server's uid, which owns the home: it may not change modes.
    _forbid_permission_changes(libc)
    if os.geteuid() == 0:
        _drop_capabilities(libc, cap_last)
        notes.append(
            "sandbox: uid 0 with every capability dropped and chmod/chown disabled "
            f"({policy.user or 'no user'} cannot reach the interpreter or modelhub)"
        )
    else:
        notes.append(
            f"sandbox: running as this server's user (uid {os.geteuid()}), chmod/chown disabled"
        )
    return notes


def _landlock_abi(libc: ctypes.CDLL) -> int:
    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return int(abi) if abi > 0 else 0


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock(libc: ctypes.CDLL, abi: int, policy: Policy) -> list[str]:
    notes: list[str] = []
    handled = ABI1_FS | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    handled |= IOCTL_DEV if abi >= 5 else 0
    attr = _RulesetAttr(handled_access_fs=handled)
    if abi >= 4 and not policy.network:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
    elif not policy.network:
        notes.append("sandbox: this kernel cannot refuse network access (Landlock ABI < 4)")
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    _check(ruleset, "landlock_create_ruleset")
    try:
        reading = READ_FILE | READ_DIR | EXECUTE
        for path in _usable(policy.read, policy.protect, notes):
            _allow(libc, ruleset, path, reading & handled)
        for path in _usable(policy.write, [], notes):
            _allow(libc, ruleset, path, handled)
        _check(libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    notes.append(
        f"sandbox: Landlock ABI {abi}: files outside the run folder are read-only "
        "system and Python folders" + ("" if policy.network else "; no TCP")
    )
    return notes


def _allow(libc: ctypes.CDLL, ruleset: int, path: Path, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= FILE_RIGHTS
        rule = _PathBeneath(allowed_access=access, parent_fd=fd)
        result = libc.syscall(
            SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
        )
        _check(result, f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _check(result: int, what: str) -> None:
    if result < 0:
        errno = ctypes.get_errno()
        raise SandboxUnavailable(f"the script sandbox failed: {what}: {os.strerror(errno)}")


# -- privileges ------------------------------------------------------------------


def _cap_last() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 63


def _target_user(policy: Policy) -> pwd.struct_passwd | None:
    """The unprivileged user to become, if it exists and can reach what the script needs."""
    if not policy.user:
        return None
    try:
        user = pwd.getpwnam(policy.user)
    except KeyError:
        return None
    if user.pw_uid == 0:
        return None
    import modelhub

    needed = [Path(sys.executable), Path(os.__file__), Path(modelhub.__file__)]
    if all(_reachable(path, user) for path in needed):
        return user
    return None


def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` (by permission bits, not ACLs) can walk to `path` and read it."""
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    try:
        real = path.resolve(strict=True)
    except OSError:
        return False
    for folder in [*reversed(real.parents), real]:
        info = folder.stat()
        want = stat.S_IXOTH if folder != real or folder.is_dir() else stat.S_IROTH
        if info.st_uid == user.pw_uid:
            want <<= 6
        elif info.st_gid in groups:
            want <<= 3
        if not info.st_mode & want:
            return False
    return True


def _hand_over(run_dir: Path, user: pwd.struct_passwd) -> None:
    """Give the run folder to `user` (the server, as root, still reads and writes it)."""
    for folder, dirs, files in os.walk(run_dir):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(folder, name), user.pw_uid, user.pw_gid)
        os.chown(folder, user.pw_uid, user.pw_gid)


def _become(libc: ctypes.CDLL, user: pwd.struct_passwd) -> None:
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    # Changing credentials clears the parent-death signal: ask for it again.
    libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities(libc: ctypes.CDLL, cap_last: int) -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets."""
    for cap in range(cap_last + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"prctl(CAPBSET_DROP, {cap})")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(version=LINUX_CAPABILITY_VERSION_3, pid=0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")


# -- seccomp: the server's uid owns its files, so a script may not change their modes --

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06
EPERM = 1
X32_SYSCALL_BIT = 0x40000000
# (audit arch, chmod-like syscalls, chown- and xattr-like syscalls) per machine.
SYSCALLS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    "x86_64": (0xC000003E, (90, 91, 268, 452), (92, 93, 94, 260, 188, 189, 190, 463)),
    "aarch64": (0xC00000B7, (52, 53, 452), (54, 55, 5, 6, 7, 463)),
}


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _forbid_permission_changes(libc: ctypes.CDLL) -> None:
    """A seccomp filter: chmod succeeds without effect, chown and setxattr fail.

    A script that keeps the server's uid (0 without capabilities, or the server's
    own user) still owns the home's files, and Landlock does not cover mode
    changes: without this it could make the home's token readable to every local
    user. chmod is a no-op rather than an
    error so that shutil.copy and friends keep working inside the run folder.
    Other architectures' syscalls (i386 on x86_64, x32) are refused outright.
    """
    machine = platform.machine()
    if machine not in SYSCALLS:
        raise SandboxUnavailable(f"the script sandbox has no seccomp filter for {machine}")
    arch, chmods, chowns = SYSCALLS[machine]
    ignore, refuse = SECCOMP_RET_ERRNO, SECCOMP_RET_ERRNO | EPERM
    program = [
        (BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (BPF_JEQ_K, 1, 0, arch),
        (BPF_RET_K, 0, 0, refuse),
        (BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        (BPF_JGE_K, 0, 1, X32_SYSCALL_BIT),
        (BPF_RET_K, 0, 0, refuse),
    ]
    for numbers, verdict in ((chmods, ignore), (chowns, refuse)):
        for number in numbers:
            program += [(BPF_JEQ_K, 0, 1, number), (BPF_RET_K, 0, 0, verdict)]
    program.append((BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    filters = (_SockFilter * len(program))(*(_SockFilter(*step) for step in program))
    prog = _SockFprog(len(program), filters)
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")
