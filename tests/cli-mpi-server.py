#!/usr/bin/env python3
"""fhegpt-server over two MPI ranks (deploy/run-mpi.sh, --oversubscribe, one thread each,
insecure test keys) on loopback.

1. Encrypted generation through the two-rank server writes exactly the tokens of the clear
   simulation (every bootstrap batch is split over both ranks).
2. Rank 1 is killed (SIGKILL) while a client generates: that client gets the server's clear
   error (the cluster lost part of a batch) within a bounded time, never a hang.
3. The server answers the next client, on rank 0 alone, with the simulated tokens again.

Usage: cli-mpi-server.py path/to/fhegpt path/to/fhegpt-server   (from the repository root)
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

PART = "layer0.head0"
COMMON = ["-m", "models/fhegpt-tiny", "--temperature", "0", "--n-bits", "4"]
PROMPT = "The king said"
DEADLINE = 300  # seconds for any one wait: a hang fails the test instead of blocking CI
MPI_TIMEOUT = 5  # the server's --mpi-timeout


def fail(message, *logs):
    for path in logs:
        if os.path.exists(path):
            sys.stderr.write(f"--- {path}\n{open(path, errors='replace').read()[-4000:]}\n")
    sys.exit(f"FAIL: {message}")


def generate(fhegpt, *args):
    return subprocess.run([fhegpt, "generate", *COMMON, "-p", PROMPT, *args], capture_output=True, text=True,
                          timeout=DEADLINE)


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def rank_pid(mpirun_pid, rank):
    for pid in children(mpirun_pid):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return pid
    return None


def main():
    fhegpt, server_bin = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="fhegpt-mpi-")
    out_path, log_path = os.path.join(work, "out"), os.path.join(work, "log")
    env = dict(os.environ, FHEGPT_THREADS="1")
    server = subprocess.Popen(
        ["sh", "deploy/run-mpi.sh", "2", "--oversubscribe", "--", server_bin, "-m", "models/fhegpt-tiny", "--part", PART,
         "--n-bits", "4", "--params", "INSECURE_TEST_4BIT_PBS_L2", "--port", "0", "--max-positions", "16",
         "--mpi-timeout", str(MPI_TIMEOUT)],
        stdout=open(out_path, "w"), stderr=open(log_path, "w"), env=env, start_new_session=True)
    try:
        start = time.monotonic()
        url = None
        while url is None:
            m = re.search(r"^listening on (\S+)", open(out_path).read(), re.M)
            url = m.group(1) if m else None
            if server.poll() is not None or time.monotonic() - start > DEADLINE:
                fail("the MPI server did not start", log_path)
            time.sleep(0.1)
        if "on each of 2 MPI ranks" not in open(log_path).read():
            fail("the server does not run on 2 MPI ranks", log_path)
        health = json.load(urllib.request.urlopen(url + "/v1/health", timeout=10))
        if health.get("ranks") != 2 or health.get("max_ranks") != 2:
            fail(f"health of the 2-rank server: {health}")

        simulated = generate(fhegpt, "-n", "3", "--simulate", PART)
        encrypted = generate(fhegpt, "-n", "3", "--server", url, "--encrypt", PART)
        print(f"simulated: {simulated.stdout!r}\nencrypted over 2 ranks: {encrypted.stdout!r}")
        if simulated.returncode != 0 or encrypted.returncode != 0 or encrypted.stdout != simulated.stdout:
            fail(f"encrypted over 2 ranks != simulated\n{encrypted.stderr}", log_path)

        # Rank 1 dies while a client generates.
        evaluations = len(re.findall(r"POST /v1/eval 200", open(log_path).read()))
        client = subprocess.Popen([fhegpt, "generate", *COMMON, "-p", PROMPT, "-n", "8", "--server", url, "--encrypt",
                                   PART], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        start = time.monotonic()
        while len(re.findall(r"POST /v1/eval 200", open(log_path).read())) == evaluations:
            if client.poll() is not None or time.monotonic() - start > DEADLINE:
                fail("the client's first evaluation did not come", log_path)
            time.sleep(0.05)
        worker = rank_pid(server.pid, 1)
        if worker is None:
            fail("rank 1's process not found")
        os.kill(worker, signal.SIGKILL)
        killed = time.monotonic()
        try:
            _, err = client.communicate(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            client.kill()
            fail("the client hangs after rank 1 died", log_path)
        waited = time.monotonic() - killed
        print(f"client after rank 1 died: exit {client.returncode} after {waited:.1f} s: "
              f"{[l for l in err.splitlines() if 'error' in l][-1:]}")
        if client.returncode != 1 or "HTTP 503" not in err or "rank 1" not in err:
            fail(f"not the server's clear error:\n{err}", log_path)
        if "rank 1 is out of the cluster" not in open(log_path).read():
            fail("the server did not log the lost rank", log_path)

        health = json.load(urllib.request.urlopen(url + "/v1/health", timeout=10))
        if health.get("ranks") != 1 or health.get("max_ranks") != 2:
            fail(f"health after rank 1 died: {health}")
        # The next client: rank 0 alone.
        again = generate(fhegpt, "-n", "3", "--server", url, "--encrypt", PART)
        print(f"next client on rank 0 alone: {again.stdout!r}")
        if again.returncode != 0 or again.stdout != simulated.stdout:
            fail(f"the server did not answer the next client\n{again.stderr}", log_path)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
