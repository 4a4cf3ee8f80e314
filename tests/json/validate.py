#!/usr/bin/python3
"""Validate every JSON output the test suite kept (PVH_JSON_DUMP) against doc/json/.

    validate.py SCHEMA_DIR DUMP_DIR

A file is named <schema>.<pid>.<n>.json by tests/fixtures/fakehost.c. Fails when a file does
not validate, when an output has no schema, when a schema is itself invalid, or when a schema
was never exercised by the suite (a schema no output meets is a promise nobody checks).
Debian's python3-jsonschema (Draft 2020-12) does the validating.
"""
import glob
import json
import os
import sys

import jsonschema

schema_dir, dump_dir = sys.argv[1], sys.argv[2]
schemas = {}
refs = {}  # the schemas each one uses by reference: exercised with it
failed = passed = 0
docs = {}
for path in sorted(glob.glob(os.path.join(schema_dir, "*.schema.json"))):
    docs[os.path.basename(path)[: -len(".schema.json")]] = (path, json.load(open(path)))
store = {doc["$id"]: doc for _, doc in docs.values() if "$id" in doc}
for name, (path, schema) in docs.items():
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        print(f"FAIL {path}: not a valid JSON Schema: {e.message}")
        failed += 1
        continue
    resolver = jsonschema.RefResolver.from_schema(schema, store=store)
    schemas[name] = jsonschema.Draft202012Validator(schema, resolver=resolver)
    text = json.dumps(schema)
    refs[name] = {other for other in docs if f'"{other}.schema.json"' in text}
used = set()
outputs = sorted(glob.glob(os.path.join(dump_dir, "*.json")))
for path in outputs:
    name = os.path.basename(path).split(".")[0]
    if name not in schemas:
        print(f"FAIL {path}: no schema doc/json/{name}.schema.json for this command's JSON")
        failed += 1
        continue
    used.add(name)
    used |= refs[name]
    try:
        doc = json.load(open(path))
    except ValueError as e:
        print(f"FAIL {path}: not JSON: {e}")
        failed += 1
        continue
    errors = sorted(schemas[name].iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        failed += 1
        for e in errors[:5]:
            where = "/".join(str(p) for p in e.absolute_path) or "(top)"
            print(f"FAIL {path}: {where}: {e.message}")
    else:
        passed += 1
for name in sorted(set(schemas) - used):
    print(f"FAIL doc/json/{name}.schema.json: no output of the suite was checked against it")
    failed += 1
if not outputs:
    print(f"FAIL {dump_dir}: the suite kept no JSON output (is PVH_JSON_DUMP set for the tests?)")
    failed += 1
print(f"json-schema: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
