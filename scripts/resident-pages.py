#!/usr/bin/env python3
"""Physical memory a group of processes occupies: the number of distinct resident physical
pages mapped by any of them (each shared library page counted once, however many of the
processes map it), read from /proc/PID/smaps and /proc/PID/pagemap (needs root for the frame
numbers). Prints JSON: {"unique_kib", "rss_sum_kib", "pss_sum_kib", "processes": [...],
"by_mapping": [[name, kib], ...]} where by_mapping charges each physical page once, to the file
(or "[anon] of PROCESS") that first maps it, largest first.

Usage: resident-pages.py PID [PID...] [--besides PID...]
With --besides, "unique_kib" counts only the pages none of the later processes already has:
what the first group adds to a machine where the second one runs.
"""
import json
import os
import re
import struct
import sys
from collections import Counter

PAGE = os.sysconf("SC_PAGE_SIZE")
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1
HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ")


HEADER_PATH = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")


def mappings_with_resident_pages(pid, comm):
    """(start, end, name) of each mapping whose Rss is not zero."""
    ranges, current = [], None
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            header = HEADER.match(line)
            if header:
                path = HEADER_PATH.match(line).group(1)
                if path.startswith("/"):
                    name = os.path.basename(path)
                else:
                    name = f"{path or '[anon]'} of {comm}"
                current = (int(header.group(1), 16), int(header.group(2), 16), name)
            elif line.startswith("Rss:") and current and int(line.split()[1]) > 0:
                ranges.append(current)
    return ranges


def frames(pid, comm):
    """{frame number: mapping name} of every resident page of the process."""
    found = {}
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for start, end, name in mappings_with_resident_pages(pid, comm):
            pagemap.seek(start // PAGE * 8)
            data = pagemap.read((end - start) // PAGE * 8)
            for (entry,) in struct.iter_unpack("<Q", data):
                if entry & PRESENT:
                    pfn = entry & PFN_MASK
                    if pfn == 0:
                        sys.exit("resident-pages: frame numbers are hidden (run as root)")
                    found.setdefault(pfn, name)
    return found


def rollup(pid, field):
    with open(f"/proc/{pid}/smaps_rollup") as text:
        for line in text:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main(pids, besides):
    present = set()
    for pid in besides:
        present.update(frames(pid, "besides"))
    union, processes = {}, []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as comm:
                name = comm.read().strip()
            pages = frames(pid, name)
            processes.append({"pid": pid, "name": name, "rss_kib": rollup(pid, "Rss"),
                              "pss_kib": rollup(pid, "Pss"),
                              "private_kib": rollup(pid, "Private_Clean") + rollup(pid, "Private_Dirty"),
                              "resident_pages": len(pages)})
            for pfn, mapping in pages.items():
                if pfn not in present:
                    union.setdefault(pfn, mapping)
        except FileNotFoundError:
            continue  # exited meanwhile
    print(json.dumps({
        "unique_kib": len(union) * PAGE // 1024,
        "rss_sum_kib": sum(p["rss_kib"] for p in processes),
        "pss_sum_kib": sum(p["pss_kib"] for p in processes),
        "processes": processes,
        "by_mapping": [[name, pages * PAGE // 1024]
                       for name, pages in Counter(union.values()).most_common()],
    }))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    arguments = sys.argv[1:]
    split = arguments.index("--besides") if "--besides" in arguments else len(arguments)
    main([int(a) for a in arguments[:split]], [int(a) for a in arguments[split + 1:]])
