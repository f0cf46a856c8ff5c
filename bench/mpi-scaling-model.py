#!/usr/bin/env python3
"""Scaling model of one session over P machines (docs/deployment.md, "Scaling model").

Reads circuits' bootstraps per depth level from `fhegpt compile --json` (pbs_by_depth) and
prints the time per evaluation on 1 and on P machines:
  level time = ceil(ceil(B / P) / c) * t                      (rank 0's share, in waves of c)
             + 2 (P - 1) / P * B * S / W + 2 * latency         (inputs out, outputs back, P > 1)
B: bootstraps of the level, c: cores per machine, t: seconds per bootstrap on one core,
S: bytes per big-key ciphertext, W: rank 0's bandwidth in bytes per second.

Usage: mpi-scaling-model.py [--cores C] [--pbs-ms T] [--gbit W] [--latency-us L]
                            [--ciphertext-bytes S] [--machines 1,8,32,128] NAME=compile.json...
"""
import argparse
import json
import math


def level_seconds(b, p, cores, t, s, w, latency):
    compute = math.ceil(math.ceil(b / p) / cores) * t
    if p == 1:
        return compute, 0.0
    return compute, 2 * (p - 1) / p * b * s / w + 2 * latency


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cores", type=int, default=64)
    ap.add_argument("--pbs-ms", type=float, default=7.4)
    ap.add_argument("--gbit", type=float, default=10.0)
    ap.add_argument("--latency-us", type=float, default=50.0)
    ap.add_argument("--ciphertext-bytes", type=int, default=16392)
    ap.add_argument("--machines", default="1,8,32,128")
    ap.add_argument("circuits", nargs="+", metavar="NAME=compile.json")
    a = ap.parse_args()
    machines = [int(m) for m in a.machines.split(",")]
    t, w, lat = a.pbs_ms / 1000, a.gbit * 1e9 / 8, a.latency_us / 1e6
    print(f"c = {a.cores} cores per machine, t = {a.pbs_ms} ms per bootstrap and core, S = {a.ciphertext_bytes} B, "
          f"W = {a.gbit:g} Gbit/s, latency {a.latency_us:g} us")
    header = "| part | bootstraps | levels | " + " | ".join(f"{p} machine{'s' if p > 1 else ''}" for p in machines) + " |"
    print(header)
    print("|" + "---|" * (3 + len(machines)))
    for spec in a.circuits:
        name, path = spec.split("=", 1)
        levels = [b for b in json.load(open(path))["pbs_by_depth"] if b > 0]
        cells = []
        base = None
        for p in machines:
            compute = comm = 0.0
            for b in levels:
                c, m = level_seconds(b, p, a.cores, t, a.ciphertext_bytes, w, lat)
                compute += c
                comm += m
            total = compute + comm
            base = base or total
            cells.append(f"{total:.2f} s" + ("" if p == 1 else f" (x{base / total:.1f}; network {comm / total:.0%})"))
        print(f"| {name} | {sum(levels):,} | {len(levels)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
