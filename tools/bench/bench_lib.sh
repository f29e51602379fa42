# Shared by the benchmark scripts: clock, percentiles, process CPU.

ms_now() { echo $(( $(date +%s%N) / 1000000 )); }

# percentile P < sorted numbers (one a line): the nearest-rank percentile.
percentile() {
  awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.1f", v[i] }'
}

# cpu_ticks PID...: utime + stime of the given processes, in clock ticks.
cpu_ticks() {
  local total=0 pid fields
  for pid in "$@"; do
    read -ra fields <<<"$(sed 's/.*) //' "/proc/$pid/stat")"
    total=$(( total + fields[11] + fields[12] ))
  done
  echo "$total"
}

# inbox_count_after NAME EXPECTED SECONDS: polls NAME's inbox (through the
# caller's `kh NAME ...`) once a second until it holds EXPECTED messages or
# SECONDS pass; prints the last count. Once a second only: the receiver's
# CPU is being measured, and every poll lists the whole inbox.
inbox_count_after() {
  local name=$1 expected=$2 seconds=$3 count=0
  local deadline=$(( $(ms_now) + seconds * 1000 ))
  while (( $(ms_now) < deadline )); do
    count=$(kh "$name" inbox --json | wc -l)
    (( count >= expected )) && break
    sleep 1
  done
  echo "$count"
}
