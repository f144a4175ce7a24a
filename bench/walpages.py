#!/usr/bin/env python3
"""bench/walpages.py WAL DB — which tables and indexes a workload's commits write.

WAL is a copy of a SQLite write-ahead log taken while the server ran (before a
graceful stop checkpoints and empties it); DB is the database file after the
stop.  Every frame of the log's current generation (the frames whose salts
match the log's header) is one page written whole at a commit; the page
number is mapped to the B-tree that owns it through SQLite's dbstat table.
Prints the frames, the commits and, per B-tree, the frames and the frames per
commit, most first.  A page freed and reused by another B-tree between the copy
and the stop would be counted under the new owner; in an insert-heavy run that
is rare.

  bench/walpages.py /tmp/run/wal.copy /tmp/run/data/siyu.db
"""
import collections
import sqlite3
import struct
import sys


def frames_of(path):
    """Page numbers of the log's current frames, and how many commits they make."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 32:
        return [], 0
    _magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(">8I", data[:32])
    pages, commits, off = [], 0, 32
    while off + 24 + page_size <= len(data):
        pgno, db_size, s1, s2, _k1, _k2 = struct.unpack(">6I", data[off:off + 24])
        if (s1, s2) != (salt1, salt2):
            break  # an older generation's frames follow
        pages.append(pgno)
        if db_size:
            commits += 1
        off += 24 + page_size
    return pages, commits


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pages, commits = frames_of(sys.argv[1])
    owner = {}
    db = sqlite3.connect("file:%s?mode=ro" % sys.argv[2], uri=True)
    for name, pageno in db.execute("SELECT name, pageno FROM dbstat"):
        owner[pageno] = name
    counts = collections.Counter(owner.get(p, "(freed)") for p in pages)
    print("WAL: %d frames in %d commits (%.1f a commit)" %
          (len(pages), commits, len(pages) / commits if commits else 0.0))
    for name, n in counts.most_common():
        print("%8d %5.1f%% %8.2f a commit  %s" %
              (n, 100.0 * n / len(pages), n / commits if commits else 0.0, name))


if __name__ == "__main__":
    main()
