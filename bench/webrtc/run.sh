#!/bin/sh
# Runs the race between reflow and pion/webrtc/v4 (and the raw UDP baseline)
# COUNT times, interleaved so that both see the same machine load: each round
# runs every sub-benchmark of BenchmarkSetup and BenchmarkRTPRate once, the
# order of reflow and pion swapped every other round, then
# BenchmarkInterleaved, which alternates the two within one benchmark (one
# call, or 5,000 packets, each in turn). Prints the load before each round;
# the lines are in the go test -bench format (benchstat reads them).
#
#	sh run.sh            # COUNT=5 SETUP=200x RATE=200000x by default
set -e
cd "$(dirname "$0")"
COUNT=${COUNT:-5}
SETUP=${SETUP:-200x}
RATE=${RATE:-200000x}
bin=$(mktemp -d)/webrtcbench.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" .
i=0
while [ "$i" -lt "$COUNT" ]; do
	i=$((i + 1))
	if [ $((i % 2)) -eq 1 ]; then order="reflow pion"; else order="pion reflow"; fi
	echo "# round $i load: $(cat /proc/loadavg)"
	for s in $order; do
		"$bin" -test.run X -test.bench "Setup/$s\$" -test.benchtime "$SETUP" | grep ^Benchmark
	done
	"$bin" -test.run X -test.bench 'RTPRate/udp$' -test.benchtime "$RATE" | grep ^Benchmark
	for s in $order; do
		"$bin" -test.run X -test.bench "RTPRate/$s\$" -test.benchtime "$RATE" | grep ^Benchmark
	done
	"$bin" -test.run X -test.bench 'Interleaved/setup$' -test.benchtime "$SETUP" | grep ^Benchmark
	"$bin" -test.run X -test.bench 'Interleaved/rtprate$' -test.benchtime "$RATE" | grep ^Benchmark
done
