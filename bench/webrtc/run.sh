#!/bin/sh
# Runs the side-by-side benchmarks of this module (reflow, pion/webrtc/v3, raw
# UDP) and of ./v4 (pion/webrtc/v4, raw UDP), interleaved, COUNT times, so that
# both binaries see the same machine load. Prints the load before each run.
#
#	sh run.sh            # COUNT=3 SETUP=30x RATE=200000x by default
set -e
cd "$(dirname "$0")"
COUNT=${COUNT:-3}
SETUP=${SETUP:-30x}
RATE=${RATE:-200000x}
go test -c -o /tmp/webrtcbench.v3.test .
(cd v4 && go test -c -o /tmp/webrtcbench.v4.test .)
i=0
while [ "$i" -lt "$COUNT" ]; do
	i=$((i + 1))
	for t in v3 v4; do
		echo "# run $i $t load: $(cat /proc/loadavg)"
		/tmp/webrtcbench.$t.test -test.run X -test.bench Setup -test.benchtime "$SETUP" | grep ^Benchmark
		/tmp/webrtcbench.$t.test -test.run X -test.bench RTPRate -test.benchtime "$RATE" | grep ^Benchmark
	done
done
