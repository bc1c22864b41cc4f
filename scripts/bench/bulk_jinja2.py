#!/usr/bin/env python3
"""Baseline for scripts/bench/bulk-rollout: the job `msipprov bulk` does with
the `default` template, done the way a Python rollout script would, with
jinja2.

It reads the user list (CSV, UTF-8 with or without BOM, `;` delimited, the
header names the variables), renders TEMPLATE_DIR/microsip.ini.j2 once per
row with jinja2 (StrictUndefined, the template set's manifest defaults under
the row's values), encodes the result as MicroSIP does (UTF-16 LE with BOM,
CRLF) and writes OUT/<username>/microsip.ini through a temporary file in the
same folder, fsync and a rename, then fsyncs the folder, like msipprov's
atomic write. Owner-only permissions, as the file holds a password.

It does less than msipprov: no validation of the result, no merge with an
existing file, no state.json (salted password hash, managed keys) and no
backup marker. Exit 0 when every row was written.

usage: bulk_jinja2.py TEMPLATE_DIR USERS.csv OUT
"""
import csv
import os
import sys

import jinja2

# templates/default/template.toml's defaults for the optional variables.
DEFAULTS = {"domain": "", "auth_id": "", "display_name": "", "label": "", "proxy": "",
            "transport": "udp", "voicemail_number": ""}


def write_atomic(target: str, data: bytes) -> None:
    folder = os.path.dirname(target)
    temp = os.path.join(folder, f".{os.path.basename(target)}.bulk-{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, target)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def main() -> int:
    template_dir, users, out = sys.argv[1:4]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(template_dir),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    template = env.get_template("microsip.ini.j2")
    failed = 0
    with open(users, encoding="utf-8-sig", newline="") as f:
        rows = csv.DictReader(f, delimiter=";")
        for row in rows:
            variables = dict(DEFAULTS)
            variables.update({k.strip(): v for k, v in row.items() if k and k.strip()})
            try:
                text = template.render(variables)
                folder = os.path.join(out, variables["username"])
                os.makedirs(folder, exist_ok=True)
                data = b"\xff\xfe" + text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-16-le")
                write_atomic(os.path.join(folder, "microsip.ini"), data)
            except Exception as e:  # one bad row does not stop the others
                failed += 1
                print(f"failed     {users}:{rows.line_num}: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
