"""fsutil's Stat.mode is Go's os.FileMode, not Unix st_mode: convert both ways."""

from __future__ import annotations

import stat as st

GO_DIR = 1 << 31
GO_APPEND = 1 << 30
GO_EXCLUSIVE = 1 << 29
GO_TEMPORARY = 1 << 28
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_NAMED_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHAR_DEVICE = 1 << 21
GO_STICKY = 1 << 20
GO_IRREGULAR = 1 << 19
GO_TYPE = GO_DIR | GO_SYMLINK | GO_NAMED_PIPE | GO_SOCKET | GO_DEVICE | GO_CHAR_DEVICE | GO_IRREGULAR


def go_mode(unix_mode: int) -> int:
    """Unix st_mode → Go os.FileMode bits."""
    m = unix_mode & 0o777
    fmt = st.S_IFMT(unix_mode)
    if fmt == st.S_IFDIR:
        m |= GO_DIR
    elif fmt == st.S_IFLNK:
        m |= GO_SYMLINK
    elif fmt == st.S_IFIFO:
        m |= GO_NAMED_PIPE
    elif fmt == st.S_IFSOCK:
        m |= GO_SOCKET
    elif fmt == st.S_IFBLK:
        m |= GO_DEVICE
    elif fmt == st.S_IFCHR:
        m |= GO_DEVICE | GO_CHAR_DEVICE
    if unix_mode & st.S_ISUID:
        m |= GO_SETUID
    if unix_mode & st.S_ISGID:
        m |= GO_SETGID
    if unix_mode & st.S_ISVTX:
        m |= GO_STICKY
    return m


def unix_perm(go: int) -> int:
    """The permission bits (incl. setuid/setgid/sticky) of a Go FileMode, as Unix bits for chmod."""
    m = go & 0o777
    if go & GO_SETUID:
        m |= st.S_ISUID
    if go & GO_SETGID:
        m |= st.S_ISGID
    if go & GO_STICKY:
        m |= st.S_ISVTX
    return m


def is_dir(go: int) -> bool:
    return bool(go & GO_DIR)


def is_symlink(go: int) -> bool:
    return bool(go & GO_SYMLINK)


def is_regular(go: int) -> bool:
    return go & GO_TYPE == 0
