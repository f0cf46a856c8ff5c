"""Zama's Concrete (concrete-python, CPU runtime) and fhegpt side by side on 4-bit lookups.

For each target failure probability, compiles a circuit of a batch of independent 4-bit table
lookups with Concrete, prints the parameters its optimizer chose (from the compiled circuit's
statistics), times key generation and the evaluation (encrypted inputs in, encrypted outputs
out; encryption and decryption not timed; wall clock and the process's CPU time), checks the
decrypted results, then runs `fhegpt bench pbs` on the fhegpt sets closest to that shape and
failure probability and prints two ratios: of throughputs (wall clock, each library with the
threads it uses) and of CPU time per lookup (the same work per core). Run by bench/peers/run.sh, which installs Concrete in a virtual
environment under build/.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fhegpt", required=True, help="path of the fhegpt binary")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="independent lookups per evaluation")
    parser.add_argument("--runs", type=int, default=3, help="timed evaluations (the median is kept)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object per comparison")
    return parser.parse_args()


# Target failure probability per lookup -> the fhegpt sets to run next to Concrete's choice.
TARGETS = [
    (2.0**-40, ["PARAM_4BIT_2M64"]),
    (2.0**-64, ["PARAM_4BIT_2M64"]),
    (2.0**-128, ["PARAM_4BIT_2M128", "PARAM_4BIT_2M128_MULTI_BIT_G4"]),
]


def cpu_line():
    model = "unknown CPU"
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    extensions = [x for x in ("avx2", "fma", "avx512f") if x in flags]
    return f"{model}, {os.cpu_count()} cores, {'+'.join(extensions) or 'no AVX2'}"


def load_line():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def concrete_run(fhe, np, p_error, batch, runs):
    table = fhe.LookupTable([(5 * i + 3) % 16 for i in range(16)])

    @fhe.compiler({"x": "encrypted"})
    def lookups(x):
        return table[x]

    rng = np.random.default_rng(1)
    inputset = [rng.integers(0, 16, size=(batch,)) for _ in range(16)]
    circuit = lookups.compile(inputset, fhe.Configuration(p_error=p_error))
    stats = circuit.statistics
    (bsk, pbs_count), = stats["programmable_bootstrap_count_per_parameter"].items()
    (ksk, ks_count), = stats["key_switch_count_per_parameter"].items()
    start = time.perf_counter()
    circuit.keygen(force=True)
    keygen_s = time.perf_counter() - start
    times, cpu_times = [], []
    for r in range(runs + 1):  # the first run warms up
        x = rng.integers(0, 16, size=(batch,))
        encrypted = circuit.encrypt(x)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = circuit.run(encrypted)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        expected = (5 * x + 3) % 16
        if not np.array_equal(circuit.decrypt(result), expected):
            sys.exit(f"Concrete returned a wrong result at p_error {p_error}")
        if r > 0:
            times.append(elapsed)
            cpu_times.append(cpu)
    times.sort()
    cpu_times.sort()
    return {
        "p_error_target": p_error,
        "p_error": stats["p_error"],
        "N": bsk.polynomial_size(),
        "k": bsk.glwe_dimension(),
        "n": bsk.input_lwe_dimension(),
        "pbs_base_log": bsk.base_log(),
        "pbs_levels": bsk.level(),
        "ks_base_log": ksk.base_log(),
        "ks_levels": ksk.level(),
        "pbs_count": pbs_count,
        "ks_count": ks_count,
        "bsk_bytes": stats["size_of_bootstrap_keys"],
        "ksk_bytes": stats["size_of_keyswitch_keys"],
        "keygen_s": keygen_s,
        "lookups_per_s": batch / times[len(times) // 2],
        "cpu_ms_per_lookup": cpu_times[len(cpu_times) // 2] * 1e3 / batch,
    }


def fhegpt_run(binary, name, threads, batch):
    out = subprocess.run(
        [binary, "bench", "pbs", "--params", name, "--threads", str(threads), "--count", str(batch), "--json"],
        check=True, capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    if j["failures"] != 0:
        sys.exit(f"fhegpt bench pbs --params {name}: {j['failures']} failed bootstraps")
    return j


def main():
    args = parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # Concrete's loop parallelism
    warnings.filterwarnings("ignore")
    import numpy as np
    from concrete import fhe
    import concrete.fhe as concrete_fhe

    version = getattr(concrete_fhe, "__version__", None)
    if version is None:
        from importlib.metadata import version as package_version
        version = package_version("concrete-python")
    print(f"machine: {cpu_line()}; load average {load_line()} at start; python {platform.python_version()}")
    print(f"Concrete {version} (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}) vs fhegpt "
          f"(--threads {args.threads}), batches of {args.batch} independent 4-bit lookups, KS + PBS each\n")
    header = (f"{'target p_fail':>13} | {'Concrete: N, k, n, PBS, KS (p_fail)':<44} | {'keygen':>7} | {'lookups/s':>9} | "
              f"{'CPU ms':>6} || {'fhegpt set':<30} | {'N, k, n, PBS, KS (p_fail)':<42} | {'keygen':>7} | "
              f"{'PBS/s':>7} | {'CPU ms':>6} || {'speed':>6} | {'CPU':>6}")
    print(header)
    print("-" * len(header))
    for p_error, sets in TARGETS:
        c = concrete_run(fhe, np, p_error, args.batch, args.runs)
        shape = (f"{c['N']}, {c['k']}, {c['n']}, 2^{c['pbs_base_log']}x{c['pbs_levels']}, "
                 f"2^{c['ks_base_log']}x{c['ks_levels']} (2^{np.log2(c['p_error']):.0f})")
        for i, name in enumerate(sets):
            f = fhegpt_run(args.fhegpt, name, args.threads, args.batch)
            ratio = f["pbs_per_s"] / c["lookups_per_s"]
            cpu_ratio = c["cpu_ms_per_lookup"] / f["batch_cpu_ms_per_pbs"]
            left = (f"{'2^%d' % round(np.log2(p_error)):>13} | {shape:<44} | {c['keygen_s']:>6.1f}s | "
                    f"{c['lookups_per_s']:>9.1f} | {c['cpu_ms_per_lookup']:>6.1f}") if i == 0 else \
                f"{'':>13} | {'':<44} | {'':>7} | {'':>9} | {'':>6}"
            group = f" g={f['grouping_factor']}" if f["grouping_factor"] > 1 else ""
            ours = (f"{f['N']}, {f['k']}, {f['n']}, 2^{f['pbs_base_log']}x{f['pbs_levels']}{group}, "
                    f"2^{f['ks_base_log']}x{f['ks_levels']} (2^{f['log2_p_fail_model']:.0f})")
            print(f"{left} || {name:<30} | {ours:<42} | {f['keygen_s']:>6.1f}s | {f['pbs_per_s']:>7.1f} | "
                  f"{f['batch_cpu_ms_per_pbs']:>6.1f} || {ratio:>5.2f}x | {cpu_ratio:>5.2f}x")
            if args.json:
                print(json.dumps({"concrete": c, "fhegpt": f, "speed_ratio": ratio, "cpu_ratio": cpu_ratio}))
    print(f"\nload average {load_line()} at the end. speed = fhegpt PBS/s / Concrete lookups/s (wall clock); "
          f"CPU = Concrete CPU ms per lookup / fhegpt CPU ms per PBS; same machine, same run. p_fail: Concrete's "
          f"for this circuit (fresh inputs); fhegpt's noise model at the set's largest 2-norm of bootstrap "
          f"outputs (fresh inputs fail less).")


if __name__ == "__main__":
    main()
