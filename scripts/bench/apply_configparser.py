#!/usr/bin/env python3
"""Baseline for scripts/bench/apply-unchanged: the job `msipprov apply` does
on the `default` template, done the way a Python provisioning script would,
with configparser.

It reads the variables (TOML), renders templates/default/microsip.ini.j2 (the
template only uses `{{ name }}` and `{{ a or b }}`, so a regex does it; no
template engine is loaded, which only favours Python), reads the target's
microsip.ini (UTF-16 LE with BOM) with configparser, sets the managed keys,
and writes the file through a temp file and a rename only when something
changed. Prints "unchanged" or "changed" like msipprov.
"""
import configparser
import io
import os
import re
import sys
import tomllib


def render(template: str, variables: dict) -> str:
    template = re.sub(r"\{#.*?#\}", "", template, flags=re.S)

    def value(expr: str) -> str:
        for name in (part.strip() for part in expr.split(" or ")):
            if variables.get(name):
                return str(variables[name])
        return ""

    return re.sub(r"\{\{\s*(.*?)\s*\}\}", lambda m: value(m.group(1)), template)


def main() -> int:
    template_dir, vars_file, target = sys.argv[1:4]
    with open(vars_file, "rb") as f:
        variables = tomllib.load(f)
    manifest_defaults = {"domain": "", "auth_id": "", "display_name": "", "label": "",
                         "proxy": "", "transport": "udp", "voicemail_number": ""}
    variables = {**manifest_defaults, **variables}
    with open(os.path.join(template_dir, "microsip.ini.j2"), encoding="utf-8") as f:
        rendered = configparser.ConfigParser(interpolation=None)
        rendered.optionxform = str
        rendered.read_string(render(f.read(), variables))

    path = os.path.join(target, "microsip.ini")
    current = configparser.ConfigParser(interpolation=None)
    current.optionxform = str
    if os.path.exists(path):
        with open(path, encoding="utf-16") as f:
            current.read_file(f)

    changed = False
    for section in rendered.sections():
        if not current.has_section(section):
            current.add_section(section)
            changed = True
        for key, value in rendered.items(section):
            if current.get(section, key, fallback=None) != value:
                current.set(section, key, value)
                changed = True

    if changed:
        out = io.StringIO()
        current.write(out, space_around_delimiters=False)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-16", newline="\r\n") as f:
            f.write(out.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    print("changed" if changed else "unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
