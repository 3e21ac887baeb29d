#!/usr/bin/env python3
"""Turns the records make-edk2-fixtures.sh wrote (one JSON object per line) into index.json.

usage: write-index.py <records.jsonl> <work-dir> <out-dir> <edk2-label> <compiler-label>
Each fixture gets its size and sha256, and every input named in its record gets the
sha256 of the bytes the tool read (inputs live in the work dir; most are not checked in).
"""
import hashlib
import json
import os
import sys


def digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    records_path, work, out, edk2, compiler = sys.argv[1:6]
    fixtures = []
    with open(records_path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            produced = os.path.join(work, record["producedAs"])
            checked_in = os.path.join(out, record["file"])
            entry = {
                "file": record["file"],
                "kind": record["kind"],
                "description": record["description"],
                "command": record["command"],
                "inputs": [
                    {"file": name, "size": os.path.getsize(os.path.join(work, name)), "sha256": digest(os.path.join(work, name))}
                    for name in record["inputs"]
                ],
                "size": os.path.getsize(checked_in),
                "sha256": digest(checked_in),
            }
            if record["producedAs"] != record["file"]:
                entry["producedAs"] = record["producedAs"]
                entry["producedSize"] = os.path.getsize(produced)
                entry["producedSha256"] = digest(produced)
            if record.get("expect"):
                entry["expect"] = record["expect"]
            fixtures.append(entry)
    index = {
        "description": "Fixtures made by EDK2's own BaseTools from deterministic inputs; regenerate with "
        "scripts/make-edk2-fixtures.sh <edk2-source-dir>. Commands run in a scratch directory with the "
        "BaseTools C tools on PATH; input files marked in the inputs lists are not all checked in, their "
        "sha256 is what a decompressed body must equal.",
        "generator": "scripts/make-edk2-fixtures.sh",
        "edk2": edk2,
        "compiler": compiler,
        "fixtures": fixtures,
    }
    with open(os.path.join(out, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
