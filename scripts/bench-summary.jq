# Summary of one scripts/bench.sh run: the figures, their ratios to the echo
# baseline of the same run, and each of issue 14's targets met or not. Inputs
# come from bench.sh (--slurpfile/--argjson/--arg; $runs holds every load
# run's report); output is JSON with a printable `.table`.

def median: map(select(. != null)) | sort | if length == 0 then null else .[length / 2 | floor] end;
def round(digits): if . == null then null else (. * pow(10; digits) | round) / pow(10; digits) end;
def pad(width): tostring | if length < width then . + (" " * (width - length)) else . end;
def lpad(width): tostring | if length < width then (" " * (width - length)) + . else . end;
def verdict(ok): if ok == null then "not measured" elif ok then "met" else "NOT MET" end;
def ratio(a; b): if a == null or b == null or b == 0 then null else a / b | round(2) end;
def mib: if . == null then null else . / 1024 | round(1) end;
def at_least(bound): if . == null then null else . >= bound end;
# A run failed when any call got an error, or when no call was answered at
# all (its server did not start, say).
def failed: (.calls // 0) == 0 or ((.errors // {}) | length > 0);
def failure: if (.calls // 0) == 0 then "\(.label): no call answered (see \(.label).stderr)"
  else "\(.label): \(.errors | to_entries | map("\(.key) \(.value)") | join(", "))" end;
# Whether any run whose label starts with `prefix` failed.
def errored(prefix): any($runs[0][]; (.label | startswith(prefix)) and failed);

($echo[0]) as $echo_runs
| ($memory[0]) as $memory_runs
| ($redis[0]) as $redis_runs
| ($rown[0]) as $rown_runs
| ($rhalf[0]) as $redis_half
| {
    echo_rps: ($echo_runs | map(.rps) | median | round(0)),
    memory_rps: ($memory_runs | map(.rps) | median | round(0)),
    redis_rps: ($redis_runs | map(.rps) | median | round(0)),
    evalsha_rps: $evalsha,
    echo_p50_us: ($echo_runs | map(.latency_us.p50) | median | round(0)),
    echo_p99_us: ($echo_runs | map(.latency_us.p99) | median | round(0)),
    memory_p50_us: ($memory_runs | map(.latency_us.p50) | median | round(0)),
    memory_p99_us: ($memory_runs | map(.latency_us.p99) | median | round(0)),
    redis_p50_us: ($redis_runs | map(.latency_us.p50) | median | round(0)),
    redis_p99_us: ($redis_runs | map(.latency_us.p99) | median | round(0)),
    echo_cpu_us_per_call: ($echo_runs | map(.server.cpu_us_per_call) | median | round(1)),
    memory_cpu_us_per_call: ($memory_runs | map(.server.cpu_us_per_call) | median | round(1)),
    redis_cpu_us_per_call: ($redis_runs | map(.server.cpu_us_per_call) | median | round(1)),
    # The same VerifyOtp on Redis, with redis-server on the client CPU.
    redis_own_rps: ($rown_runs | map(.rps) | median | round(0)),
    redis_own_p50_us: ($rown_runs | map(.latency_us.p50) | median | round(0)),
    redis_own_p99_us: ($rown_runs | map(.latency_us.p99) | median | round(0)),
    redis_own_cpu_us_per_call: ($rown_runs | map(.server.cpu_us_per_call) | median | round(1)),
    memory_half: {
      target_rps: $mhalf[0].target_rps, rps: ($mhalf[0].rps | round(0)),
      p50_us: ($mhalf[0].latency_us.p50 | round(0)), p99_us: ($mhalf[0].latency_us.p99 | round(0)),
      p99_9_us: ($mhalf[0].latency_us.p99_9 | round(0)), cpu_percent: ($mhalf[0].server.cpu_percent | round(0))
    },
    echo_half: {
      target_rps: $ehalf[0].target_rps, rps: ($ehalf[0].rps | round(0)),
      p50_us: ($ehalf[0].latency_us.p50 | round(0)), p99_us: ($ehalf[0].latency_us.p99 | round(0)),
      p99_9_us: ($ehalf[0].latency_us.p99_9 | round(0)), cpu_percent: ($ehalf[0].server.cpu_percent | round(0))
    },
    redis_half: (if $redis_half == null then null else {
      target_rps: $redis_half.target_rps, rps: ($redis_half.rps | round(0)),
      p50_us: ($redis_half.latency_us.p50 | round(0)), p99_us: ($redis_half.latency_us.p99 | round(0)),
      p99_9_us: ($redis_half.latency_us.p99_9 | round(0))
    } end),
    quiet_rps: ($quiet[0] | map(.rps) | median | round(0)),
    quiet_cpu_us_per_call: ($quiet[0] | map(.server.cpu_us_per_call) | median | round(1)),
    timeleft_rps: ($timeleft[0] | map(.rps) | median | round(0)),
    send_rps: ($send[0] | map(.rps) | median | round(0)),
    timeleft_cpu_us_per_call: ($timeleft[0] | map(.server.cpu_us_per_call) | median | round(1)),
    send_cpu_us_per_call: ($send[0] | map(.server.cpu_us_per_call) | median | round(1)),
    redis_timeleft_rps: ($rtimeleft[0] | map(.rps) | median | round(0)),
    redis_send_rps: ($rsend[0] | map(.rps) | median | round(0)),
    redis_timeleft_cpu_us_per_call: ($rtimeleft[0] | map(.server.cpu_us_per_call) | median | round(1)),
    redis_send_cpu_us_per_call: ($rsend[0] | map(.server.cpu_us_per_call) | median | round(1)),
    judged_send_rps: ($judged[0] | map(.rps) | median | round(0)),
    judged_send_cpu_us_per_call: ($judged[0] | map(.server.cpu_us_per_call) | median | round(1)),
    send_outcomes: ($send[0][0].outcomes),
    redis_send_outcomes: ($rsend[0][0].outcomes),
    # A refused call (e.g. RESOURCE_EXHAUSTED from a send limit) is cheap and
    # would flatter rps: any error in any run (send runs included), and any
    # run with no call answered, is listed under the table.
    errors: ($runs[0] | map(select(failed) | failure)),
    echo_server_cpu_percent: ($echo_runs | map(.server.cpu_percent) | median | round(0)),
    echo_client_cpu_percent: ($echo_runs | map(.client_cpu_percent) | median | round(0)),
    memory_server_cpu_percent: ($memory_runs | map(.server.cpu_percent) | median | round(0)),
    verify_outcomes: ($memory_runs[0].outcomes),
    idle_rss_mib: ($startup[0].idle_rss_kib | mib),
    idle_rss_anon_mib: ($startup[0].idle_rss_anon_kib | mib),
    idle_pss_mib: ($startup[0].idle_pss_kib | mib),
    # Every run of the service as configured by bench.sh (both stores,
    # bench_server included); not echo, and not the RUST_LOG=warn variant,
    # which is there to price the log line, not a configuration judged.
    load_rss_mib: ($runs[0] | map(select(.label | test("^(echo|quiet)-") | not) | .server.peak_rss_kib) | max | mib),
    # RssAnon and PSS at the end of each such run (the kernel keeps no peak of them).
    load_rss_anon_mib: ($runs[0] | map(select(.label | test("^(echo|quiet)-") | not) | .server.rss_anon_kib // empty) | max | mib),
    load_pss_mib: ($runs[0] | map(select(.label | test("^(echo|quiet)-") | not) | .server.pss_kib // empty) | max | mib),
    start_to_serving_ms: ($startup[0].start_to_serving_ms.median | round(1)),
    stripped_binary_mib: ($binary / 1048576 | round(2))
  }
| .memory_over_echo = ratio(.memory_rps; .echo_rps)
| .redis_over_echo = ratio(.redis_rps; .echo_rps)
| .redis_over_evalsha = ratio(.redis_rps; .evalsha_rps)
| .memory_cpu_ratio = ratio(.echo_cpu_us_per_call; .memory_cpu_us_per_call)
| .redis_cpu_ratio = ratio(.echo_cpu_us_per_call; .redis_cpu_us_per_call)
| .redis_own_over_echo = ratio(.redis_own_rps; .echo_rps)
| .redis_own_cpu_ratio = ratio(.echo_cpu_us_per_call; .redis_own_cpu_us_per_call)
| .quiet_over_echo = ratio(.quiet_rps; .echo_rps)
| .quiet_cpu_ratio = ratio(.echo_cpu_us_per_call; .quiet_cpu_us_per_call)
| .timeleft_over_echo = ratio(.timeleft_rps; .echo_rps)
| .send_over_echo = ratio(.send_rps; .echo_rps)
| .redis_timeleft_over_echo = ratio(.redis_timeleft_rps; .echo_rps)
| .redis_send_over_echo = ratio(.redis_send_rps; .echo_rps)
| .timeleft_cpu_ratio = ratio(.echo_cpu_us_per_call; .timeleft_cpu_us_per_call)
| .send_cpu_ratio = ratio(.echo_cpu_us_per_call; .send_cpu_us_per_call)
| .judged_send_over_echo = ratio(.judged_send_rps; .echo_rps)
| .judged_send_cpu_ratio = ratio(.echo_cpu_us_per_call; .judged_send_cpu_us_per_call)
| .redis_timeleft_cpu_ratio = ratio(.echo_cpu_us_per_call; .redis_timeleft_cpu_us_per_call)
| .redis_send_cpu_ratio = ratio(.echo_cpu_us_per_call; .redis_send_cpu_us_per_call)
# In closed loop the service, or for echo at least one side, should use its
# whole CPU; if not, something else on the machine took it.
| ((.memory_server_cpu_percent // 100) < 85
   or ((.echo_server_cpu_percent // 100) < 85 and (.echo_client_cpu_percent // 100) < 85)) as $busy
# Issue 14's targets, each judged on one figure of this run. A ratio from a
# busy machine gets " ?"; one from runs that had errors gets " (errors)".
| def closed_loop(verdict; measured; prefix):
    verdict + (if $busy and measured then " ?" else "" end)
    + (if errored(prefix) then " (errors)" else "" end);
  .targets = [
    {name: "VerifyOtp, memory store: cpu ratio >= 0.8", value: .memory_cpu_ratio,
     verdict: closed_loop(verdict(.memory_cpu_ratio | at_least(0.8)); .memory_cpu_ratio != null; "memory-verify-")},
    {name: "VerifyOtp, Redis store: cpu ratio >= 0.5", value: .redis_cpu_ratio,
     verdict: closed_loop(verdict(.redis_cpu_ratio | at_least(0.5)); .redis_cpu_ratio != null; "redis-verify-")},
    {name: "SendOtp, memory store: cpu ratio >= 0.6", value: .send_cpu_ratio,
     verdict: closed_loop(verdict(.send_cpu_ratio | at_least(0.6)); .send_cpu_ratio != null; "memory-send-")},
    {name: "SendOtp, Redis store: cpu ratio >= 0.35", value: .redis_send_cpu_ratio,
     verdict: closed_loop(verdict(.redis_send_cpu_ratio | at_least(0.35)); .redis_send_cpu_ratio != null; "redis-send-")},
    {name: "p99 <= 2 ms at half max rps, memory", value: "\(.memory_half.p99_us) us",
     verdict: verdict(if .memory_half.p99_us == null then null else .memory_half.p99_us <= 2000 end)},
    {name: "p99 <= 2 ms at half max rps, Redis", value: "\(.redis_half.p99_us // "-") us",
     verdict: verdict(if .redis_half == null then null else .redis_half.p99_us <= 2000 end)},
    # The idle and load VmRSS targets are retired (issues 26 and 30): VmRSS
    # counts the binary's own pages, charged to the pod either way; RssAnon
    # and PSS are reported below instead, and bytes per number replace the
    # load figure (issue 30).
    {name: "memory (reported, no bound)",
     value: "idle RssAnon \(.idle_rss_anon_mib // "-") MiB, load RssAnon \(.load_rss_anon_mib // "-") MiB",
     verdict: "reported (no bound)"},
    {name: "Redis on its own core, VerifyOtp: rps ratio",
     value: (if .redis_own_over_echo == null then null else "\(.redis_own_over_echo) (cpu \(.redis_own_cpu_ratio))" end),
     verdict: (if .redis_own_over_echo == null then "not measured" else "reported (no bound)" end)}
  ]
# Kept from earlier targets, not one of issue 14's.
| .extra_targets = [
    {name: "start to SERVING <= 100 ms", value: "\(.start_to_serving_ms) ms",
     verdict: verdict(.start_to_serving_ms <= 100)}
  ]
| .notes = ([
    (if .echo_client_cpu_percent != null and .echo_client_cpu_percent >= 90 then
      "the load generator used \(.echo_client_cpu_percent)% of its CPU on echo: the echo rps is partly a client limit, so rps ratios flatter the service; the CPU ratio (echo us/call over service us/call) does not depend on the client" else empty end),
    (if $busy then
      "closed-loop runs did not get their CPUs (service \(.memory_server_cpu_percent)%; echo \(.echo_server_cpu_percent)%, its load generator \(.echo_client_cpu_percent)%): the machine was busy, so the ratios are unreliable (marked ?); BENCH_SCHED=rt helps" else empty end),
    (if $sched != "rt" then
      "issue 14 judges the p99 targets with BENCH_SCHED=rt; this run used \($sched)" else empty end),
    (if (.errors | length) > 0 then
      "some runs failed (listed above): a refused call is cheap, and a run with no call answered has no figures, so those runs' rps and cpu ratios are not valid" else empty end)
  ])
| .table = ([
    "run                                           rps   rps/echo   p50 us   p99 us   server us/call   cpu ratio",
    (("echo baseline, VerifyOtp" | pad(40)) + (.echo_rps | lpad(9)) + ("1.00" | lpad(11)) + (.echo_p50_us | lpad(9)) + (.echo_p99_us | lpad(9)) + (.echo_cpu_us_per_call | lpad(17)) + ("1.00" | lpad(12))),
    (("service memory, VerifyOtp" | pad(40)) + (.memory_rps | lpad(9)) + (.memory_over_echo | lpad(11)) + (.memory_p50_us | lpad(9)) + (.memory_p99_us | lpad(9)) + (.memory_cpu_us_per_call | lpad(17)) + (.memory_cpu_ratio | lpad(12))),
    (("  same, RUST_LOG=warn" | pad(40)) + (.quiet_rps | lpad(9)) + (.quiet_over_echo | lpad(11)) + ("" | lpad(18)) + (.quiet_cpu_us_per_call | lpad(17)) + (.quiet_cpu_ratio | lpad(12))),
    (("service Redis, VerifyOtp" | pad(40)) + ((.redis_rps // "skipped") | lpad(9)) + ((.redis_over_echo // "-") | lpad(11)) + ((.redis_p50_us // "-") | lpad(9)) + ((.redis_p99_us // "-") | lpad(9)) + ((.redis_cpu_us_per_call // "-") | lpad(17)) + ((.redis_cpu_ratio // "-") | lpad(12))),
    (("service Redis (own core), VerifyOtp (+)" | pad(40)) + ((.redis_own_rps // "skipped") | lpad(9)) + ((.redis_own_over_echo // "-") | lpad(11)) + ((.redis_own_p50_us // "-") | lpad(9)) + ((.redis_own_p99_us // "-") | lpad(9)) + ((.redis_own_cpu_us_per_call // "-") | lpad(17)) + ((.redis_own_cpu_ratio // "-") | lpad(12))),
    (("redis-benchmark EVALSHA" | pad(40)) + ((.evalsha_rps // "-" | tostring | split(".")[0]) | lpad(9))),
    (("service memory, TimeLeft" | pad(40)) + (.timeleft_rps | lpad(9)) + (.timeleft_over_echo | lpad(11)) + ("" | lpad(18)) + (.timeleft_cpu_us_per_call | lpad(17)) + (.timeleft_cpu_ratio | lpad(12))),
    (("service memory, SendOtp (*)" | pad(40)) + (.send_rps | lpad(9)) + (.send_over_echo | lpad(11)) + ("" | lpad(18)) + (.send_cpu_us_per_call | lpad(17)) + (.send_cpu_ratio | lpad(12))),
    (("  same, guard judging every send (*)" | pad(40)) + ((.judged_send_rps // "skipped") | lpad(9)) + ((.judged_send_over_echo // "-") | lpad(11)) + ("" | lpad(18)) + ((.judged_send_cpu_us_per_call // "-") | lpad(17)) + ((.judged_send_cpu_ratio // "-") | lpad(12))),
    (("service Redis, TimeLeft" | pad(40)) + ((.redis_timeleft_rps // "skipped") | lpad(9)) + ((.redis_timeleft_over_echo // "-") | lpad(11)) + ("" | lpad(18)) + ((.redis_timeleft_cpu_us_per_call // "-") | lpad(17)) + ((.redis_timeleft_cpu_ratio // "-") | lpad(12))),
    (("service Redis, SendOtp (*)" | pad(40)) + ((.redis_send_rps // "skipped") | lpad(9)) + ((.redis_send_over_echo // "-") | lpad(11)) + ("" | lpad(18)) + ((.redis_send_cpu_us_per_call // "-") | lpad(17)) + ((.redis_send_cpu_ratio // "-") | lpad(12))),
    "  (*) bench_server: the service with a gateway that does no I/O",
    "  (+) redis-server on the load generator's CPU instead of the service's (2 cores: no core of its own)",
    "  cpu ratio: echo server CPU per call / this server's CPU per call (client-independent)",
    "",
    ("open loop at half max, memory: \(.memory_half.rps) of \(.memory_half.target_rps) rps, p50 \(.memory_half.p50_us) us, p99 \(.memory_half.p99_us) us, p99.9 \(.memory_half.p99_9_us) us, server CPU \(.memory_half.cpu_percent)%"),
    ("  echo at the same rate:       \(.echo_half.rps) of \(.echo_half.target_rps) rps, p50 \(.echo_half.p50_us) us, p99 \(.echo_half.p99_us) us, p99.9 \(.echo_half.p99_9_us) us, server CPU \(.echo_half.cpu_percent)%"),
    (if .redis_half == null then "open loop at half max, Redis: skipped" else
      "open loop at half max, Redis: \(.redis_half.rps) of \(.redis_half.target_rps) rps, p50 \(.redis_half.p50_us) us, p99 \(.redis_half.p99_us) us, p99.9 \(.redis_half.p99_9_us) us" end),
    ("VerifyOtp results (memory, round 1): " + (.verify_outcomes | to_entries | map("\(.key) \(.value)") | join(", "))),
    (if .send_outcomes == null then empty else
      "SendOtp results (memory, round 1): " + (.send_outcomes | to_entries | map("\(.key) \(.value)") | join(", ")) end),
    (if .redis_send_outcomes == null then empty else
      "SendOtp results (Redis, round 1): " + (.redis_send_outcomes | to_entries | map("\(.key) \(.value)") | join(", ")) end),
    (if (.errors | length) == 0 then "errors: none in any run (\($runs[0] | length) runs, every one answered calls)" else "ERRORS in \(.errors | length) of \($runs[0] | length) runs: " + (.errors | join("; ")) end),
    ("CPU use in closed loop: echo server \(.echo_server_cpu_percent)%, load generator on echo \(.echo_client_cpu_percent)%, service \(.memory_server_cpu_percent)%"),
    ("idle RSS \(.idle_rss_mib) MiB (RssAnon \(.idle_rss_anon_mib // "-") MiB, PSS \(.idle_pss_mib // "-") MiB), peak RSS under load \(.load_rss_mib) MiB (RssAnon \(.load_rss_anon_mib // "-") MiB, PSS \(.load_pss_mib // "-") MiB at the end of a run), start to SERVING \(.start_to_serving_ms) ms, stripped binary \(.stripped_binary_mib) MiB"),
    "",
    "issue 14 target                                 value            verdict"
  ] + (.targets | map((.name | pad(48)) + (.value // "-" | tostring | pad(17)) + .verdict))
    + ["not an issue 14 target:"]
    + (.extra_targets | map((.name | pad(48)) + (.value // "-" | tostring | pad(17)) + .verdict))
    + (if (.notes | length) > 0 then [""] + (.notes | map("note: " + .)) else [] end)
  | join("\n"))
