#!/usr/bin/env python3
"""Validate collbench's -J files: the native format against
docs/collbench-run.schema.json; nccl-tests' format (a "nccl_version" key)
is checked by tests/integration/nccl_format.py instead. Other JSON files
(pairs, configs) are left alone. Usage: validate_json.py FILE... ; prints
"FILE: why" per invalid file, exits 1 if any."""
import json
import os
import sys

import jsonschema

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "collbench-run.schema.json")


def main():
    schema = json.load(open(SCHEMA))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    bad = 0
    for path in sys.argv[1:]:
        try:
            doc = json.load(open(path))
        except (OSError, ValueError) as e:
            print(f"{path}: {e}")
            bad += 1
            continue
        if not isinstance(doc, dict) or "collbench_version" not in doc or "results" not in doc:
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for e in errors[:3]:
            print(f"{path}: {'/'.join(map(str, e.path))}: {e.message[:200]}")
        bad += bool(errors)
    sys.exit(1 if bad else 0)


main()
