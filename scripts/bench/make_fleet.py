#!/usr/bin/env python3
"""Fleet for scripts/bench/check-fleet: N profiles DIR/uNNNNN/MicroSIP/microsip.ini.

Each profile is examples/microsip.ini in MicroSIP's own encoding (UTF-16 LE
with BOM, CRLF), varied per user (username, displayName, label, lastCallNumber
and a few [Calls] lines) and made compliant with the bench policy: every
[AccountN] has transport=tls and SRTP=mandatory, [Settings] has enableLog=0
and autoAnswer=button. Every K-th profile (--drift-every, default 100) gets
one planted drift, in turn transport=udp, enableLog=1, autoAnswer=all.

The text is prepared once per variant with placeholders, so each profile
costs one format, one encode and one write. Prints how many drifted profiles
it planted ("100 drifted of 10000 profiles").
"""
import argparse
import os
import re
import sys

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "microsip.ini")

# (section, key, value): what makes a profile compliant with the bench policy.
COMPLIANT = [("Account", "transport", "tls"), ("Account", "SRTP", "mandatory"),
             ("Settings", "enableLog", "0"), ("Settings", "autoAnswer", "button")]
# One drift per drifted profile, rotating.
DRIFTS = [("Account", "transport", "udp"), ("Settings", "enableLog", "1"),
          ("Settings", "autoAnswer", "all")]
# Per-user values, as str.format placeholders.
PER_USER = [("Account", "username", "{username}"), ("Account", "displayName", "{display_name}"),
            ("Account", "label", "{label}"), ("Settings", "lastCallNumber", "{number}")]
CALLS = ["0={ext};Reception;0;{t0};45;Call Ended",
         "8={ext2};Helpdesk;3;{t1};0;Answered Elsewhere",
         "9={number};{display_name};1;{t2};30;Call Ended"]


def set_keys(lines: list[str], values: list[tuple[str, str, str]]) -> list[str]:
    """Sets each (section, key, value); section "Account" means every [AccountN]."""
    out, section = [], None
    for line in lines:
        m = re.fullmatch(r"\[(.*)\]", line.strip())
        if m:
            section = m.group(1)
            section = "Account" if re.fullmatch(r"Account\d+", section) else section
        else:
            key = line.split("=", 1)[0]
            for sec, k, v in values:
                if sec == section and k == key:
                    line = f"{k}={v}"
        out.append(line)
    return out


def set_calls(lines: list[str]) -> list[str]:
    """Replaces the [Calls] entries with the same numbers as CALLS."""
    keys = {c.split("=", 1)[0]: c for c in CALLS}
    out, section = [], None
    for line in lines:
        m = re.fullmatch(r"\[(.*)\]", line.strip())
        if m:
            section = m.group(1)
        elif section == "Calls" and line.split("=", 1)[0] in keys:
            line = keys[line.split("=", 1)[0]]
        out.append(line)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir")
    parser.add_argument("n", type=int)
    parser.add_argument("--drift-every", type=int, default=100, metavar="K")
    args = parser.parse_args()
    if args.drift_every < 1:
        parser.error("--drift-every must be at least 1")

    with open(EXAMPLE, "rb") as f:
        text = f.read().decode("utf-16")
    lines = text.replace("{", "{{").replace("}", "}}").split("\r\n")
    base = set_calls(set_keys(lines, COMPLIANT + PER_USER))
    variants = ["\r\n".join(base)] + ["\r\n".join(set_keys(base, [d])) for d in DRIFTS]

    planted = 0
    for i in range(args.n):
        if (i + 1) % args.drift_every == 0:
            variant = variants[1 + planted % len(DRIFTS)]
            planted += 1
        else:
            variant = variants[0]
        ext = 10000 + i
        ini = variant.format(
            username=str(ext), display_name=f"Сотрудник {i:05d}", label=f"Офис {i % 50:02d}",
            number=f"+7495{1000000 + i:07d}", ext=str(1000 + i % 100), ext2=str(1100 + i % 7),
            t0=1718200000 + i, t1=1756100000 + i, t2=1756109189 + i)
        profile = os.path.join(args.dir, f"u{i:05d}", "MicroSIP")
        os.makedirs(profile, exist_ok=True)
        with open(os.path.join(profile, "microsip.ini"), "wb") as f:
            f.write(b"\xff\xfe" + ini.encode("utf-16-le"))
    print(f"{planted} drifted of {args.n} profiles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
