"""nginx with the whole conf/nginx.conf (one worker) under valgrind's
memcheck through a short mixed scenario (bench/mixed -pay), on the test
stack: what the worker loses, by allocation stack, in one report per
process under build/nginx-memcheck/ (the worker's is the largest).  Used to
tell a leak from memory malloc keeps (docs/benchmarks.md, the soak).

    scripts/stack.sh start test redis mongo kafka
    build/venv/bin/python bench/nginx-memcheck.py   # MEMCHECK_PAIRS=10
                                                   # MEMCHECK_SECONDS=90
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path[:0] = [os.path.join(os.path.dirname(__file__), "..", "tests",
                             "integration")]

from feira import ROOT, Nginx, stack_env, wait_for  # noqa: E402

import mixed  # noqa: E402

OUT = os.path.join(ROOT, "build", "nginx-memcheck")


def main():
    mixed.PAIRS = int(os.environ.get("MEMCHECK_PAIRS", "10"))
    seconds = os.environ.get("MEMCHECK_SECONDS", "90")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    os.chmod(OUT, 0o1777)          # the worker runs as nobody
    load = mixed.build_load()

    n = Nginx(workers=1)
    with open(n.conf) as f:
        text = f.read()
    with open(n.conf, "w") as f:
        f.write(text.replace("limit_conn  feira_addr  256;",
                             "limit_conn  feira_addr  60000;"))
    subprocess.run(["valgrind", "--tool=memcheck", "--leak-check=full",
                    "--show-leak-kinds=definite", "--num-callers=40",
                    f"--log-file={OUT}/%p.log"] + n.cmd(), check=True,
                   env=n.nginx_env)
    try:
        wait_for(lambda: n.get("/readyz").status == 200, timeout=180,
                 what="nginx under memcheck ready")
        env = stack_env()
        with open(os.path.join(env["STACK_DIR"], "secrets", "jwt-secret"),
                  "rb") as f:
            key = f.read().strip()
        base = f"http://127.0.0.1:{n.port}"
        pairs = os.path.join(OUT, "pairs.json")
        with open(pairs, "w") as f:
            json.dump(mixed.seed(env, base, key), f)
        r = subprocess.run([load, "-base", base, "-pairs", pairs,
                            "-seconds", seconds, "-pay"], check=True,
                           capture_output=True, text=True)
        res = json.loads(r.stdout)
        print(f"{res['lifecycles']} lifecycles, {res['failed']} failed")
    finally:
        subprocess.run(n.cmd("-s", "quit"), env=n.nginx_env)
        wait_for(lambda: not subprocess.run(
            ["pgrep", "-f", n.dir], capture_output=True).stdout,
            timeout=120, what="nginx stopped")
        n.cleanup()

    for name in sorted(os.listdir(OUT)):
        if not name.endswith(".log"):
            continue
        with open(os.path.join(OUT, name)) as f:
            text = f.read()
        allocs = re.search(r"total heap usage: ([\d,]+) allocs", text)
        lost = re.search(r"definitely lost: ([\d,]+) bytes in ([\d,]+) "
                         r"blocks", text)
        print(f"{OUT}/{name}: {allocs.group(1) if allocs else '?'} "
              f"allocations, definitely lost: "
              f"{lost.group(1) + ' bytes in ' + lost.group(2) + ' blocks' if lost else '0'}")


if __name__ == "__main__":
    main()
