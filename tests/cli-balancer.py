#!/usr/bin/env python3
"""Two fhegpt-server replicas behind HAProxy on loopback (deploy/run-local.sh, insecure test keys).

Four clients generate in parallel through the balancer: their sessions must be spread over both
replicas, and every client whose replica stays up must write exactly the tokens of the clear
simulation. Once every session has been evaluated at least once, replica fhegpt-a is killed
(SIGKILL, as a crash): its clients must fail with the balancer's clear error (never hang, never
crash), the others finish, and a new client afterwards gets its session on fhegpt-b.

Usage: cli-balancer.py path/to/fhegpt path/to/fhegpt-server   (from the repository root)
Exits 77 (skipped) only when haproxy is not installed.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

PART = "layer0.head0"
COMMON = ["-m", "models/fhegpt-tiny", "--temperature", "0", "--n-bits", "4"]
PROMPTS = ["The king said", "The king said", "And the LORD", "And the LORD"]
TOKENS = 4  # per client: enough evaluations that fhegpt-a dies while its clients still need it
DEADLINE = 300  # seconds for any one wait: a hang fails the test instead of blocking CI


def fail(message, *logs):
    for path in logs:
        if os.path.exists(path):
            sys.stderr.write(f"--- {path}\n{open(path, errors='replace').read()[-4000:]}\n")
    sys.exit(f"FAIL: {message}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, logs=()):
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > DEADLINE:
            fail(f"timed out waiting for {what}", *logs)
        time.sleep(0.1)


def count(path, pattern):
    try:
        return len(re.findall(pattern, open(path, errors="replace").read()))
    except FileNotFoundError:
        return 0


def main():
    fhegpt, server_bin = sys.argv[1], sys.argv[2]
    if shutil.which("haproxy") is None:
        print("SKIP: haproxy is not installed (scripts/install-deps.sh installs it)")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="fhegpt-balancer-")
    logs = {r: os.path.join(work, f"{r}.log") for r in ("a", "b", "haproxy")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    lb = subprocess.Popen(
        ["sh", "deploy/run-local.sh", "--server", server_bin, "--port", str(port), "--dir", work, "--",
         "-m", "models/fhegpt-tiny", "--part", PART, "--n-bits", "4", "--params", "INSECURE_TEST_4BIT_PBS_L2",
         "--max-positions", "16", "--max-sessions", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    clients = []
    try:
        line = ""
        start = time.monotonic()
        while not line.startswith("listening on "):
            line = lb.stdout.readline()
            if not line or time.monotonic() - start > DEADLINE:
                fail("deploy/run-local.sh did not start", *logs.values())
        health = json.load(urllib.request.urlopen(url + "/v1/health", timeout=10))
        if health.get("instance") not in ("fhegpt-a", "fhegpt-b") or health.get("max_sessions") != 4:
            fail(f"health through the balancer: {health}")

        simulated = {}
        for p in set(PROMPTS):
            simulated[p] = subprocess.run([fhegpt, "generate", *COMMON, "-p", p, "-n", str(TOKENS), "--simulate", PART],
                                          capture_output=True, text=True, timeout=DEADLINE, check=True).stdout

        for i, p in enumerate(PROMPTS):
            err = open(os.path.join(work, f"client{i}.err"), "w")
            clients.append((p, err.name, subprocess.Popen(
                [fhegpt, "generate", *COMMON, "-p", p, "-n", str(TOKENS), "--server", url, "--encrypt", PART],
                stdout=subprocess.PIPE, stderr=err, text=True)))
            err.close()

        created = lambda r: count(logs[r], r"POST /v1/sessions 201")
        evaluated = lambda r: count(logs[r], r"POST /v1/eval 200")
        wait_for("four sessions", lambda: created("a") + created("b") == 4, logs.values())
        on_a, on_b = created("a"), created("b")
        print(f"sessions: {on_a} on fhegpt-a, {on_b} on fhegpt-b")
        if on_a == 0 or on_b == 0:
            fail("the balancer did not spread the sessions over both replicas", *logs.values())
        wait_for("an evaluation of every session", lambda: evaluated("a") >= on_a and evaluated("b") >= on_b,
                 logs.values())
        os.kill(int(open(os.path.join(work, "a.pid")).read()), signal.SIGKILL)
        print(f"killed fhegpt-a after {evaluated('a')} evaluations")

        finished, failed = 0, 0
        for i, (p, err_path, proc) in enumerate(clients):
            try:
                out, _ = proc.communicate(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                fail(f"client {i} hangs after fhegpt-a died", err_path, *logs.values())
            err = open(err_path, errors="replace").read()
            if proc.returncode == 0:
                if out != simulated[p]:
                    fail(f"client {i}: encrypted {out!r} != simulated {simulated[p]!r}", err_path)
                finished += 1
            else:
                message = [l for l in err.splitlines() if "error" in l][-1:] or ["(no error line)"]
                print(f"client {i} failed (exit {proc.returncode}): {message[0]}")
                if proc.returncode != 1 or "load balancer:" not in err or "start a new one" not in err:
                    fail(f"client {i}: not the balancer's clear error", err_path, logs["haproxy"])
                failed += 1
        print(f"clients: {finished} finished with the simulated tokens, {failed} failed with a clear error")
        if failed == 0 or failed > on_a or finished < on_b:
            fail(f"{failed} clients failed for {on_a} sessions on the killed replica", *logs.values())

        # fhegpt-a is down: a new session goes to fhegpt-b and completes.
        before = created("b")
        out = subprocess.run([fhegpt, "generate", *COMMON, "-p", PROMPTS[0], "-n", "1", "--server", url, "--encrypt",
                              PART], capture_output=True, text=True, timeout=DEADLINE)
        expected = subprocess.run([fhegpt, "generate", *COMMON, "-p", PROMPTS[0], "-n", "1", "--simulate", PART],
                                  capture_output=True, text=True, timeout=DEADLINE, check=True).stdout
        if out.returncode != 0 or out.stdout != expected or created("b") != before + 1:
            fail(f"a new client with fhegpt-a down: exit {out.returncode}, {out.stdout!r} vs {expected!r}\n{out.stderr}",
                 *logs.values())
        print("a new session after the crash went to fhegpt-b and finished")
    finally:
        for _, _, proc in clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        lb.terminate()
        try:
            lb.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lb.kill()
            lb.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
