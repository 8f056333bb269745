"""Course files into the persistent home, copy-if-absent.

The rule: a file or directory of the course (the image's /home/student) is copied into the home only
where the home has nothing at that path. A student's file is never overwritten or removed, so a new
image version adds its new files and leaves the student's edits of older ones alone. Symlinks are
copied as links; nothing is followed out of the course tree.
"""

import os
import shutil


def sync(course: str, home: str) -> int:
    if not os.path.isdir(course) or not os.path.isdir(home):
        return 0
    copied = 0
    for dirpath, dirnames, filenames in os.walk(course):
        rel = os.path.relpath(dirpath, course)
        dest_dir = home if rel == "." else os.path.join(home, rel)
        if os.path.lexists(dest_dir) and not os.path.isdir(dest_dir):
            dirnames[:] = []  # the student has a file where the course has a folder: theirs stays
            continue
        os.makedirs(dest_dir, exist_ok=True)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            src, dest = os.path.join(dirpath, name), os.path.join(dest_dir, name)
            if os.path.lexists(dest):
                continue
            try:
                if os.path.islink(src):
                    os.symlink(os.readlink(src), dest)
                else:
                    shutil.copy2(src, dest)
                copied += 1
            except OSError:
                continue  # unreadable course file: the session starts anyway
    return copied
