#!/usr/bin/env python3
"""User list for scripts/bench/bulk-rollout: a CSV file as Excel exports it
(UTF-8, `;` delimited, CRLF) with the header username;password;display_name;server
and N users u000001..uNNNNNN.

Display names rotate through a few scripts (Latin with accents, Cyrillic,
Greek, CJK), so the UTF-16 output is not plain ASCII, and no value needs CSV
quoting. Deterministic: the same N gives the same file.

usage: make_users.py FILE N
"""
import sys

FIRST = ["Jane", "José", "Zoë", "Алиса", "Björn", "Ελένη", "李", "Françoise", "Øyvind", "Mary Ann"]
LAST = ["Doe", "Müller", "Ñúñez", "Иванова", "Åström", "Παπαδοπούλου", "小龙", "Lefèvre", "Ødegård", "O'Brien"]


def main() -> None:
    path, count = sys.argv[1], int(sys.argv[2])
    lines = ["username;password;display_name;server"]
    for i in range(1, count + 1):
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"
        lines.append(f"u{i:06d};pw-{(i * 7919) % 1000003:07d}-x;{name};sip{i % 4}.example.com")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
    print(f"{count} users in {path}")


if __name__ == "__main__":
    main()
