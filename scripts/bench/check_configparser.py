#!/usr/bin/env python3
"""Peer for scripts/bench/check-fleet: the audit `msipprov check` does, done
the way a Python fleet script would, with configparser.

Usage: check_configparser.py POLICY.toml [POLICY.toml...] GLOB

Reads the policies (TOML, tomllib): each table is an ini section, `Account`
meaning every [AccountN]; each key holds a rule, `enforce = VALUE` (the value
must be exactly that) or `allow = [VALUES]` (the value must be one of them),
with `reason` and optionally `severity` (default "error"). Then, for every
profile folder GLOB matches (sorted), reads its microsip.ini (UTF-16 LE with
BOM) with configparser and checks every rule; a key the file does not have
is MicroSIP's default and counted as compliant. Prints the same JSON object
as `msipprov check --json` (without line numbers, which configparser does not
know): `profiles[]` with their violations and `summary` with the counts.
Exit 0, 3 when there is an error violation, 1 when a profile could not be
read, like msipprov.
"""
import configparser
import glob
import json
import os
import re
import sys
import tomllib


def load_rules(paths: list[str]) -> list[tuple[str, str, dict]]:
    rules = []
    for path in paths:
        with open(path, "rb") as f:
            for section, keys in tomllib.load(f).items():
                for key, rule in keys.items():
                    rules.append((section, key, rule))
    return rules


def check_value(current: str, rule: dict) -> tuple[str, object] | None:
    """(rule kind, expected) when `current` breaks the rule, None otherwise."""
    if "enforce" in rule and current != str(rule["enforce"]):
        return "enforce", str(rule["enforce"])
    if "allow" in rule and current not in [str(v) for v in rule["allow"]]:
        return "allow", [str(v) for v in rule["allow"]]
    return None


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    rules = load_rules(sys.argv[1:-1])
    account = re.compile(r"Account\d+")
    profiles, summary = [], {"profiles": 0, "with_violations": 0, "errors": 0, "warnings": 0, "unreadable": 0}
    for profile in sorted(p for p in glob.glob(sys.argv[-1]) if os.path.isdir(p)):
        summary["profiles"] += 1
        ini = configparser.ConfigParser(interpolation=None)
        ini.optionxform = str
        try:
            with open(os.path.join(profile, "microsip.ini"), encoding="utf-16") as f:
                ini.read_file(f)
        except (OSError, UnicodeError, configparser.Error) as e:
            summary["unreadable"] += 1
            profiles.append({"profile": profile, "error": str(e), "violations": []})
            continue
        violations = []
        for section_rule, key, rule in rules:
            if section_rule == "Account":
                sections = [s for s in ini.sections() if account.fullmatch(s)]
            else:
                sections = [section_rule] if ini.has_section(section_rule) else []
            for section in sections:
                current = ini.get(section, key, fallback=None)
                if current is None:
                    continue
                broken = check_value(current, rule)
                if broken:
                    severity = rule.get("severity", "error")
                    violations.append({"section": section, "key": key, "current": current,
                                       "expected": broken[1], "rule": broken[0],
                                       "severity": severity, "reason": rule.get("reason", "")})
                    summary["errors" if severity == "error" else "warnings"] += 1
        if violations:
            summary["with_violations"] += 1
        profiles.append({"profile": profile, "violations": violations})
    print(json.dumps({"profiles": profiles, "summary": summary}, ensure_ascii=False))
    if summary["unreadable"]:
        return 1
    return 3 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
