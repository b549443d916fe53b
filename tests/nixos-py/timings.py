# per-call timings (median of N) for the closing note; prints one line per call
import time

N = int(os.environ.get("TIMING_ROUNDS", "10"))


def median(f):
    xs = []
    for _ in range(N):
        tic = time.monotonic()
        f()
        xs.append((time.monotonic() - tic) * 1000)
    xs.sort()
    return xs[len(xs) // 2]


serial_stdout_off()
server.start_job("nginx")
server.wait_for_unit("nginx")
for m in [client, server]:
    rows = [
        ("succeed('true')", lambda: m.succeed("true")),
        ("execute('true')", lambda: m.execute("true")),
        ("wait_for_file('/')", lambda: m.wait_for_file("/")),
        ("wait_until_succeeds('true')", lambda: m.wait_until_succeeds("true")),
    ]
    if m is server:
        rows += [("wait_for_unit('nginx')", lambda: m.wait_for_unit("nginx")),
                 ("get_unit_info('nginx')", lambda: m.get_unit_info("nginx")),
                 ("wait_for_open_port(80)", lambda: m.wait_for_open_port(80))]
    for name, f in rows:
        print(f"TIMING {m.name} {name} {median(f):.1f} ms (guest shell mode {driver.guest_shell})")
