#!/usr/bin/env bash
# `make profile`: where the time of one Ping goes (issue 18, ADR 0018).
#
# Builds the bench test binary and runs BenchmarkPing for stdiojson and goplugin
# (mutual TLS) twice each: once with a CPU profile of the host (this process)
# and of the worker child, once with an execution trace of both. The child
# writes its profile and trace when it exits, through the bench worker's
# $BROKERKIT_BENCH_WORKER_PROFILE and $BROKERKIT_BENCH_WORKER_TRACE. Files go to
# bin/profile/ (OUT):
#
#   bench.test                         the binary the profiles symbolize against
#   TRANSPORT-host.prof  .trace        the host's CPU profile and execution trace
#   TRANSPORT-worker.prof  .trace      the worker's
#   TRANSPORT-bench.txt                the benchmark's output (round trips timed)
#   summary.txt                        what is printed at the end
#
# The summary gives, per transport and side, CPU time per Ping, the share of
# CPU by category (stacks that contain the category's functions; categories
# overlap), from the trace the time goroutines waited runnable (scheduler
# latency, `go tool trace -pprof=sched`, also kept as TRANSPORT-SIDE.sched.pprof)
# and the goroutines started per Ping, and `go tool pprof -top`. Explore further with
#   go tool pprof -http=: bin/profile/bench.test bin/profile/goplugin-host.prof
#   go tool trace bin/profile/goplugin-worker.trace
#
# BUSY=1 runs beside one process spinning a core, as `make bench BUSY=1` does.
# PROFILETIME (default 5s) is the -benchtime of the profiled run; the traced
# run makes 5000 round trips (traces grow fast).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-bin/profile}
PROFILETIME=${PROFILETIME:-5s}
TOP=${TOP:-12}
TRACED=5000
mkdir -p "$OUT"
rm -f "$OUT"/*.prof "$OUT"/*.pprof "$OUT"/*.trace "$OUT"/*-bench.txt "$OUT"/summary.txt
abs=$(cd "$OUT" && pwd)
bin=$abs/bench.test
echo "==> building $OUT/bench.test" >&2
$GO test -c -o "$bin" ./bench/
busy=
if [ "${BUSY:-}" = 1 ]; then busy=1; fi

# run TRANSPORT KIND(prof|trace) BENCHTIME: one BenchmarkPing/TRANSPORT run
# with the host's and the worker's profile or trace.
run() {
  local tr=$1 kind=$2 benchtime=$3 work
  work=$(mktemp -d)
  local flag=-test.cpuprofile env=BROKERKIT_BENCH_WORKER_PROFILE
  if [ "$kind" = trace ]; then flag=-test.trace env=BROKERKIT_BENCH_WORKER_TRACE; fi
  echo "==> $tr: BenchmarkPing with $kind of host and worker" >&2
  (cd "$work" && env BROKERKIT_BENCH_BUSY=$busy "$env=$work" "$bin" -test.run='^$' \
    -test.bench="^BenchmarkPing\$/^$tr\$" -test.benchtime="$benchtime" -test.count=1 \
    "$flag=$abs/$tr-host.$kind") >>"$OUT/$tr-bench.txt"
  local got=("$work"/worker-"$tr"-*."$kind")
  if [ ! -s "${got[0]}" ]; then
    echo "profile: the $tr worker wrote no $kind (did it exit cleanly?)" >&2
    rm -rf "$work"
    return 1
  fi
  # One worker per benchmark run; keep the last (the measured one).
  mv "$(ls -t "$work"/worker-"$tr"-*."$kind" | head -1)" "$abs/$tr-worker.$kind"
  rm -rf "$work"
}

for tr in stdiojson goplugin; do
  run "$tr" prof "$PROFILETIME"
  run "$tr" trace "${TRACED}x"
done

# cpu FILE: total CPU seconds of a profile ("Total samples = X" in pprof's header).
cpu() {
  $GO tool pprof -top -nodecount=1 "$bin" "$1" 2>/dev/null |
    sed -n 's/.*Total samples = \([0-9.]*\)\(m\?s\).*/\1 \2/p' |
    awk '{ print ($2 == "ms") ? $1 / 1000 : $1 }'
}

# share FILE REGEX: percentage of the profile's samples whose stack has a
# function matching REGEX (every node shown, so that "accounting for" is all
# the focused samples).
share() {
  local pct
  pct=$($GO tool pprof -top -nodecount=1000000 -nodefraction=0 -edgefraction=0 -focus="$2" "$bin" "$1" 2>/dev/null |
    sed -n 's/.*accounting for [^,]*, \([0-9.]*\)% of .*/\1/p' | head -1)
  echo "${pct:-0}"
}

categories=(
  "syscalls (read, write, epoll_wait)|^syscall\.|^internal/runtime/syscall|^internal/poll\."
  "runtime: scheduling, wakeups, netpoll|^runtime\.(schedule|findRunnable|park_m|ready|goready|wakep|startm|stopm|notewakeup|notesleep|futex|futexsleep|futexwakeup|netpoll|mPark|handoffp|injectglist|resetspinning|usleep|osyield)\$"
  "runtime: GC and allocation|^runtime\.(gcBgMarkWorker|gcDrain|mallocgc|scanobject|gcAssistAlloc|bgsweep|sweepone)"
  "JSON encoding and parsing|^encoding/json|^github.com/brokerkit/brokerkit/transport/stdiojson\.(.*[Mm]arshal|.*appendJSON|append[A-Z]|encode[A-Z]|.*decode|fast[A-Z]|\(\*fastDecoder\)|parse[A-Z]|reparse|scanMembers|skip[A-Z]|peekID|checkID)"
  "protobuf encoding|^google.golang.org/protobuf/"
  "TLS record layer and crypto|^crypto/"
  "HTTP/2 framing and gRPC transport|^golang.org/x/net/http2|^google.golang.org/grpc/internal/transport"
)

{
  echo "# make profile: one Ping, host and worker ($(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), mode $([ -n "$busy" ] && echo busy || echo idle))"
  for tr in stdiojson goplugin; do
    line=$(grep -E "^BenchmarkPing/$tr-[0-9]+ " "$OUT/$tr-bench.txt" | head -1)
    n=$(awk '{print $2}' <<<"$line")
    nsop=$(awk '{print $3}' <<<"$line")
    echo
    echo "## $tr: $n round trips, $nsop ns each (wall clock, profiled run)"
    for side in host worker; do
      f=$OUT/$tr-$side.prof
      total=$(cpu "$f")
      echo
      echo "### $side: $(awk -v t="$total" -v n="$n" 'BEGIN { printf "%.1f µs CPU per Ping (%.2fs of samples)", t * 1e6 / n, t }')"
      for c in "${categories[@]}"; do
        printf '  %-40s %6s%%\n' "${c%%|*}" "$(share "$f" "${c#*|}")"
      done
      tr_=$OUT/$tr-$side.trace
      $GO tool trace -pprof=sched "$tr_" >"$OUT/$tr-$side.sched.pprof" 2>/dev/null || true
      delay=$($GO tool pprof -top -nodecount=1 "$OUT/$tr-$side.sched.pprof" 2>/dev/null |
        sed -n 's/.* of \([0-9.]*\)\([mu]\?s\) total.*/\1 \2/p' |
        awk '{ print ($2 == "s") ? $1 * 1e6 : ($2 == "ms") ? $1 * 1e3 : $1 }')
      created=$($GO tool trace -d=parsed "$tr_" 2>/dev/null | grep -c 'NotExist->Runnable' || true)
      echo "  traced run ($TRACED round trips): $(awk -v d="${delay:-0}" -v c="$created" -v n="$TRACED" \
        'BEGIN { printf "%.1f µs per Ping runnable but not running (scheduler latency), %.2f goroutines started per Ping", d / n, c / n }')"
      echo
      $GO tool pprof -top -nodecount="$TOP" "$bin" "$f" 2>/dev/null | sed -n '/flat%/,$p'
    done
  done
  echo
  echo "Traces: go tool trace $OUT/{stdiojson,goplugin}-{host,worker}.trace"
  echo "Explore: go tool pprof -http=: $OUT/bench.test $OUT/goplugin-host.prof"
} | tee "$OUT/summary.txt"
