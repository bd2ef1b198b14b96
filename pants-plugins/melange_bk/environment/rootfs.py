"""Base root filesystems for build environments that start from a local directory.

`busybox_rootfs(dest)`: Debian's static busybox plus one symlink per applet and the build user melange uses
(uid/gid 1000, home /home/build) — about 2 MB, for fast tests. `bin/rootfs` makes the same tree from the shell
and the Debian build rootfs (debootstrap) for real packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from melange_bk.errors import MelangeError

BUSYBOX = "/bin/busybox"
BUILD_UID = 1000
PASSWD = "root:x:0:0:root:/root:/bin/sh\nbuild:x:1000:1000:build:/home/build:/bin/sh\n"
GROUP = "root:x:0:\nbuild:x:1000:\n"


def busybox_rootfs(dest: str, busybox: str = BUSYBOX) -> str:
    """Create a busybox rootfs in `dest` (created if missing); return `dest`."""
    if not os.path.isfile(busybox):
        raise MelangeError(
            f"{busybox} not found: install Debian's busybox-static (apt-get install busybox-static)"
        )
    try:
        applets = subprocess.run(
            [busybox, "--list-full"], check=True, capture_output=True, text=True, timeout=30
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as e:
        raise MelangeError(f"{busybox} --list-full failed: {e}") from None
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "dev", "proc", "sys", "tmp", "home/build"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copyfile(busybox, os.path.join(dest, "bin/busybox"))
    os.chmod(os.path.join(dest, "bin/busybox"), 0o755)
    for applet in sorted(set(applets)):
        if applet == "bin/busybox" or applet.startswith("/") or ".." in applet.split("/"):
            continue
        link = os.path.join(dest, applet)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        target = os.path.relpath(os.path.join(dest, "bin/busybox"), os.path.dirname(link))
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)
    with open(os.path.join(dest, "etc/passwd"), "w") as f:
        f.write(PASSWD)
    with open(os.path.join(dest, "etc/group"), "w") as f:
        f.write(GROUP)
    if os.geteuid() == 0:
        os.chown(os.path.join(dest, "home/build"), BUILD_UID, BUILD_UID)
    else:
        os.chmod(os.path.join(dest, "home/build"), 0o777)
    return dest
