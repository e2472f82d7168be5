"""Confining the model worker with Linux namespaces, before the model is read (stdlib + ctypes).

An environment allow-list is not enough on its own: a process of the app's user can read the
app's files (the signing key, `.streamlit/secrets.toml`, the governance SQLite file), the app's
environment through `/proc/<pid>/environ`, signal or ptrace the app, and reach the database
over the network. So the worker's first statements put it where none of that exists:

- new user (when not root), mount, network, PID and IPC namespaces: no network but a loopback
  that is down, no process of the host to see, signal or trace, no SysV IPC of the host;
- a root folder built from nothing (a small tmpfs) holding only what Python needs, read-only:
  /usr and the system's library links, the interpreter and the virtualenv, the `app` package,
  a few /etc files the dynamic loader reads, /dev/null and friends, a /proc of its own (where
  the host allows one); the worker's folder read-only and a size-limited tmpfs as its
  temporary folder. `pivot_root`
  moves into it and the host's tree is detached, so no path, descriptor or `..` leads back;
- then no capabilities and PR_SET_NO_NEW_PRIVS (no set-uid program can give any back), at most
  MAX_PROCESSES processes; a worker started as root runs as `nobody`.

Nothing else is optional: `confine` either finishes or raises `Unavailable`, and the worker
refuses to load the model (the launcher names the setting that accepts running without it).
Needs Linux with unprivileged user namespaces, or root; x86-64 or arm64. Docker's and
Kubernetes' default seccomp profiles refuse unshare(2) to a container without CAP_SYS_ADMIN.
Not bounded here: the memory of the (at most MAX_PROCESSES) processes the model may start, taken
together (a cgroup's job), and the kernel's own attack surface (a seccomp filter's job).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import signal
import sys
from collections.abc import Iterable
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
# statvfs f_flag bits that a bind mount in a user namespace must keep (they are locked).
_LOCKED = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME}
_LOCKED |= {2048: MS_NODIRATIME, 4096: MS_RELATIME}

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAP_VERSION_3 = 0x20080522
PIVOT_ROOT = {"x86_64": 155, "amd64": 155, "aarch64": 41, "arm64": 41}
NOBODY = 65534
MAX_PROCESSES = 32  # processes and threads of the worker (it needs one)

DEVICES = ("null", "zero", "full", "random", "urandom")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class Unavailable(Exception):
    """This host does not let the worker confine itself; the reason is one line."""


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise Unavailable(f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def no_new_privs() -> None:
    """No execve can grant privileges from here on (set-uid bits, file capabilities)."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(text)
    except OSError as exc:
        raise Unavailable(f"writing {path}: {exc.strerror}") from None


def _locked_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in _LOCKED.items() if flags & st)


def _mirror_links(root: str, path: str) -> str:
    """Recreate under `root` each symlink on the way to `path`; returns the resolved path."""
    current = "/"
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            inside = root + candidate
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            if not os.path.lexists(inside):
                os.symlink(target, inside)
            resolved = os.path.normpath(os.path.join(current, target))
            rest = "/".join(parts[i + 1 :])
            return _mirror_links(root, os.path.join(resolved, rest) if rest else resolved)
        current = candidate
    return current


def _bind(root: str, path: str, *, device: bool = False) -> None:
    """Bind `path` (its real location; symlinks on the way are recreated) read-only into
    `root` (a device node stays writable and usable, everything else is nodev)."""
    if not os.path.lexists(path):
        return
    real = _mirror_links(root, path)
    if not os.path.exists(real):
        return
    target = root + real
    if os.path.isdir(real):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(real, target, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | _locked_flags(real)
    _mount(None, target, None, flags if device else flags | MS_RDONLY | MS_NODEV)


def _tmpfs(target: str, size_mb: int, mode: str = "0755") -> None:
    os.makedirs(target, exist_ok=True)
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode={mode}")


def _python_paths(code: list[str]) -> list[str]:
    """The interpreter's own folders and sys.path, without the folder that holds our code
    (the repository: it also holds `.streamlit` and, by default, the data folder)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    parents = {os.path.dirname(os.path.abspath(c)) for c in code}
    return sorted(p for p in paths if os.path.abspath(p) not in parents)


def _drop_bounding_set() -> None:
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:
            _check(-1, "prctl(PR_CAPBSET_DROP)")  # 22 (EINVAL): past the last capability


def _clear_capabilities() -> None:
    header = (ctypes.c_uint32 * 2)(CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, data), "capset")


def _give_to_nobody(workdir: Path) -> None:
    for folder, dirs, files in os.walk(workdir):
        for name in (folder, *(os.path.join(folder, n) for n in dirs + files)):
            os.lchown(name, NOBODY, NOBODY)


def _become_nobody() -> None:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def _build_root(root: str, workdir: Path, code: list[str], tmp_mb: int) -> None:
    _tmpfs(root, 8)
    for path in (*SYSTEM, *_python_paths(code), *code):
        _bind(root, path)
    for name in ETC:
        _bind(root, f"/etc/{name}")
    _tmpfs(f"{root}/dev", 1)
    for name in DEVICES:
        _bind(root, f"/dev/{name}", device=True)
    _bind(root, str(workdir))
    _tmpfs(root + str(workdir / "tmp"), tmp_mb, "1777")
    os.makedirs(f"{root}/proc", exist_ok=True)
    # A /proc of its own PID namespace (only the worker's processes are in it) where the host
    # allows one; a container that masks parts of its own /proc does not, and the worker needs
    # none: the PID namespace, not /proc, is what hides the app's processes.
    with contextlib.suppress(Unavailable):
        _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _pivot(root: str) -> None:
    number = PIVOT_ROOT.get(platform.machine().lower())
    if number is None:
        raise Unavailable(f"pivot_root is not known on {platform.machine()}")
    old = f"{root}/.host"
    os.makedirs(old, exist_ok=True)
    os.chdir(root)
    _check(_libc.syscall(number, root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.host", MNT_DETACH), "detaching the host's tree")
    os.rmdir("/.host")
    _mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _wait(child: int) -> int:
    """The child's end as an exit code: its code, or 128 + the signal that ended it."""
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except InterruptedError:
            continue
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.waitstatus_to_exitcode(status)


def _end_as(code: int) -> None:
    """Exit as the worker ended: by the same signal (the launcher names the limit), or code."""
    if code > 128 and code - 128 in set(signal.Signals):
        sig = code - 128
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(code)


def confine(workdir: Path, code: Iterable[str], tmp_mb: int = 64) -> None:
    """Move this (single-threaded) process into its own namespaces and root folder.

    Returns in a grandchild that runs in the new namespaces with no privilege left. The
    calling process waits for PID 1 of the new PID namespace, which waits for that grandchild
    (the namespace's first process ignores signals it has no handler for, so the model never
    runs as it: a CPU-time or file-size signal must end the worker); both end as it ended.
    Call before any thread is started and before the model is read.

    Args:
        workdir: The worker's folder (request, model, data): visible read-only, at its path.
        code: Folders of our own code to make visible read-only (the `app` package).
        tmp_mb: Size of the writable temporary folder `workdir/tmp`.

    Raises:
        Unavailable: The kernel or the container refused a step; nothing was loaded yet.
    """
    workdir, code = Path(workdir).resolve(), [str(Path(c).resolve()) for c in code]
    as_root = os.geteuid() == 0
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    _check(_libc.unshare(flags if as_root else flags | CLONE_NEWUSER), "unshare")
    if not as_root:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the host
    first = os.fork()
    if first:
        _end_as(_wait(first))
    try:
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
        (workdir / "tmp").mkdir(exist_ok=True)
        if as_root:
            _give_to_nobody(workdir)
        _build_root(str(workdir / ".root"), workdir, code, tmp_mb)
        _pivot(str(workdir / ".root"))
        worker = os.fork()
        if worker:
            os._exit(_wait(worker))
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
        _drop_bounding_set()
        if as_root:
            _become_nobody()
        _clear_capabilities()
        no_new_privs()
        # Counted per user namespace (per user, when started as root): a fork bomb stops here.
        resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))
        os.chdir(workdir)
    except Unavailable:
        raise
    except OSError as exc:
        raise Unavailable(f"{exc.strerror or exc} ({exc.filename or 'sandbox'})") from None


ISOLATION_FAILED = 3  # the worker's exit code when it could not confine itself


def enter(isolation: str, workdir: Path, code: Iterable[str]) -> None:
    """The worker's first step: confine itself (`namespaces`), or only forbid new privileges
    (`limits-only`, the operator's explicit choice). When confinement fails the worker answers
    {"error", "isolation"} and exits ISOLATION_FAILED without reading the model."""
    import json

    try:
        if isolation == "limits-only":
            no_new_privs()
        else:
            confine(workdir, code)
    except Unavailable as exc:
        sys.stdout.write(json.dumps({"error": "no isolation", "isolation": str(exc)[:300]}))
        sys.stdout.flush()
        os._exit(ISOLATION_FAILED)
