#!/usr/bin/env python3
"""hangfs: a FUSE file system, spoken straight to /dev/fuse, whose files
never answer: files that hang the way a hung NFS or FUSE mount does.

    hangfs.py MOUNTPOINT READY_FILE

Mounts MOUNTPOINT (root only) with three regular files of 100 bytes:
  lookup.yaml  its LOOKUP is never answered (realpath and stat hang)
  open.yaml    LOOKUP and GETATTR are answered, OPEN never is
  read.yaml    LOOKUP, GETATTR and OPEN are answered, READ never is
and writes "ok" to READY_FILE once mounted, or "error: REASON" and exits 1
when it cannot mount (no /dev/fuse, no permission: a container). A request
left unanswered is answered -EINTR when the kernel sends its INTERRUPT (the
waiting thread got a fatal signal: its process is exiting), as a file
system that honours interrupts does; one that does not would keep the
process in the kernel until the file system is aborted. SIGTERM or SIGINT:
the mount is detached and the daemon exits (closing /dev/fuse aborts every
request still waiting).

Only what these files need is implemented: INIT, LOOKUP, GETATTR, OPEN,
OPENDIR/READDIR (empty), RELEASE, FLUSH, FORGET, INTERRUPT, DESTROY; the
rest is ENOSYS. Structures are the kernel's (include/uapi/linux/fuse.h),
protocol 7.31.
"""
import ctypes
import errno
import os
import signal
import struct
import sys

FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR = 1, 2, 3
FUSE_OPEN, FUSE_READ, FUSE_RELEASE, FUSE_FLUSH = 14, 15, 18, 25
FUSE_INIT, FUSE_OPENDIR, FUSE_READDIR, FUSE_RELEASEDIR = 26, 27, 28, 29
FUSE_INTERRUPT, FUSE_DESTROY, FUSE_BATCH_FORGET = 36, 38, 42

IN_HEADER = struct.Struct("<IIQQIIIHH")   # len opcode unique nodeid uid gid pid extlen pad
OUT_HEADER = struct.Struct("<IiQ")        # len error unique
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # struct fuse_attr, 88 bytes

ROOT = 1
FILES = {"lookup.yaml": 2, "open.yaml": 3, "read.yaml": 4}
HANG_LOOKUP, HANG_OPEN, HANG_READ = 2, 3, 4
SIZE = 100


def attr(node):
    if node == ROOT:
        mode, size, nlink = 0o040755, 0, 2
    else:
        mode, size, nlink = 0o100644, SIZE, 1
    return ATTR.pack(node, size, 1, 0, 0, 0, 0, 0, 0, mode, nlink, 0, 0, 0, 4096, 0)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    mnt, ready = sys.argv[1], sys.argv[2]

    def say(text):
        with open(ready + ".tmp", "w") as f:
            f.write(text + "\n")
        os.rename(ready + ".tmp", ready)

    libc = ctypes.CDLL(None, use_errno=True)
    try:
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        say("error: cannot open /dev/fuse: %s" % e.strerror)
        return 1
    opts = "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other" % fd
    MS_NOSUID, MS_NODEV = 2, 4
    if libc.mount(b"hangfs", mnt.encode(), b"fuse.hangfs", MS_NOSUID | MS_NODEV, opts.encode()) != 0:
        say("error: cannot mount FUSE at %s: %s" % (mnt, os.strerror(ctypes.get_errno())))
        return 1

    def stop(signum, frame):
        libc.umount2(mnt.encode(), 2)  # MNT_DETACH
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    say("ok")

    pending = set()  # uniques left unanswered on purpose

    def reply(unique, error=0, body=b""):
        try:
            os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(body), -error, unique) + body)
        except OSError:
            pass  # the request was interrupted meanwhile

    while True:
        try:
            buf = os.read(fd, 1 << 20)
        except OSError as e:
            if e.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                continue
            if e.errno == errno.ENODEV:  # unmounted
                return 0
            raise
        _, op, unique, node, _, _, _, _, _ = IN_HEADER.unpack_from(buf)
        arg = buf[IN_HEADER.size:]
        if op == FUSE_INIT:
            major, minor, readahead, flags = struct.unpack_from("<IIII", arg)
            out = struct.pack("<IIIIHHIIHHII", 7, 31, readahead, 0, 16, 12, 65536, 1, 0, 0, 0, 0)
            reply(unique, 0, out + b"\0" * (64 - len(out)))
        elif op == FUSE_LOOKUP:
            name = arg.split(b"\0", 1)[0].decode(errors="replace")
            child = FILES.get(name) if node == ROOT else None
            if child is None:
                reply(unique, errno.ENOENT)
            elif child == HANG_LOOKUP:
                pending.add(unique)
            else:
                reply(unique, 0, struct.pack("<QQQQII", child, 0, 1, 1, 0, 0) + attr(child))
        elif op == FUSE_GETATTR:
            reply(unique, 0, struct.pack("<QII", 1, 0, 0) + attr(node))
        elif op in (FUSE_OPEN, FUSE_OPENDIR):
            if node == HANG_OPEN:
                pending.add(unique)
            else:
                reply(unique, 0, struct.pack("<QIi", 0, 0, 0))
        elif op == FUSE_READ:
            if node == HANG_READ:
                pending.add(unique)
            else:
                reply(unique, 0, b"")
        elif op == FUSE_READDIR:
            reply(unique, 0, b"")
        elif op in (FUSE_RELEASE, FUSE_RELEASEDIR, FUSE_FLUSH):
            reply(unique, 0)
        elif op in (FUSE_FORGET, FUSE_BATCH_FORGET):
            pass  # no answer by protocol
        elif op == FUSE_INTERRUPT:
            (target,) = struct.unpack_from("<Q", arg)
            if target in pending:
                pending.discard(target)
                reply(target, errno.EINTR)
        elif op == FUSE_DESTROY:
            reply(unique, 0)
            return 0
        else:
            reply(unique, errno.ENOSYS)


if __name__ == "__main__":
    sys.exit(main())
