#!/usr/bin/env python3
"""The path of one typed call through the workspace, from a callgrind profile (docs/DESIGN.md §2).

Usage, from the workspace root:

    cargo build -p dopy-bench
    valgrind --tool=callgrind --callgrind-out-file=path.cg \\
        target/debug/dopy-bench --only seq --impl typed --scale 0.01
    python3 dopy-bench/tools/call_path.py path.cg

A debug build inlines nothing, so every function of the workspace a call runs shows up. The
benchmark's sequential workload makes one `add` call after another (client and server in one
process); a function "is on the path" when it ran at least once per call. Printed: how many
calls were made, the functions of dopy-core on the path and the files they live in, and the
edges between dopy-core's layers (docs/DESIGN.md §1) that the path takes: downward (a layer
calling one below it) and upward (control coming back into a higher layer, as a closure handed
down and called back does). Files of the layout before the layers (`message.rs`, `refs.rs`,
...) are counted in the layer their content belongs to now, so old and new profiles compare.
"""
import collections
import os
import re
import sys

# dopy-core's layers, bottom up, and the pre-layer files by the layer their content went to.
LAYERS = ["id", "arena", "handle", "value", "interface", "codec", "error", "serve", "peer", "object"]
OLD = {"message": "codec", "typed": "codec", "bulk": "codec", "refs": "value", "dispatch": "serve",
       "table": "serve", "chain": "serve", "panic": "serve", "local": "serve"}
CORE = "dopy-core/src/"


def parse(path):
    """Each function's file, and the call counts of every caller -> callee edge."""
    names = {"fl": {}, "fn": {}}
    file_of, edges = {}, collections.Counter()
    current_file = current_fn = callee_file = callee = None

    def name(kind, spec):
        m = re.match(r"\((\d+)\)(?: (.*))?", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind][m.group(1)]

    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("fl="):
            current_file = name("fl", line[3:])
        elif line.startswith(("fi=", "fe=")):
            name("fl", line[3:])
        elif line.startswith("fn="):
            current_fn = name("fn", line[3:])
            file_of.setdefault(current_fn, current_file)
            callee_file = None
        elif line.startswith(("cfi=", "cfl=")):
            callee_file = name("fl", line[4:])
        elif line.startswith("cfn="):
            callee = name("fn", line[4:])
            if callee_file:
                file_of.setdefault(callee, callee_file)
        elif line.startswith("calls="):
            edges[(current_fn, callee)] += int(line[6:].split()[0])
            callee_file = None
    return file_of, edges


def core_path(file):
    """The file's path inside dopy-core's sources, if it is one."""
    if not file:
        return None
    at = file.find(CORE)
    return file[at + len(CORE):] if at >= 0 else None


def layer(file):
    rel = core_path(file)
    if rel is None:
        return None
    top = rel.split("/")[0].removesuffix(".rs")
    return OLD.get(top, top)


def main():
    file_of, edges = parse(sys.argv[1])
    called = collections.Counter()
    for (_, callee), count in edges.items():
        called[callee] += count
    calls = max(c for f, c in called.items() if f.endswith("::BenchObject::add"))
    on_path = {f for f, c in called.items() if c >= calls and core_path(file_of.get(f))}
    files = collections.Counter(core_path(file_of[f]) for f in on_path)
    named = [f for f in on_path if "{{closure}}" not in f]
    print(f"calls: {calls}")
    print(f"dopy-core on the path: {len(on_path)} functions ({len(named)} without closures) "
          f"in {len(files)} files")
    for file, n in sorted(files.items()):
        print(f"  {file}: {n}")
    down, up = [], []
    for (caller, callee), count in edges.items():
        a, b = layer(file_of.get(caller)), layer(file_of.get(callee))
        if count < calls or a == b or a not in LAYERS or b not in LAYERS:
            continue
        (down if LAYERS.index(b) < LAYERS.index(a) else up).append(f"{a} -> {b}: {caller} -> {callee}")
    print(f"edges between layers: {len(down)} down, {len(up)} up")
    for edge in sorted(up):
        print(f"  up {edge}")


if __name__ == "__main__":
    sys.exit(main())
