#!/usr/bin/env bash
# Runs every Fuzz target of the module for a bounded number of executions each (FUZZTIME,
# default 150000x: 3-30 s per target here from an empty cache), each under a 3-minute test
# timeout. A new input is minimized for at most 3 s, not the default 60 s.
#
# The budget is a count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# report its own -fuzztime deadline as a failure ("context deadline exceeded", no input
# written; golang/go#75804, fixed in Go 1.27). A count takes no deadline, so only a real
# crasher or a hang fails the run.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-150000x}
cd "$(dirname "$0")/.."
found=0
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
	pkg=$(dirname "$file")
	echo "fuzz: $pkg $name for $FUZZTIME"
	"$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 3s -timeout 3m "$pkg"
	found=$((found + 1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./dist/')
echo "fuzz: $found targets, none failed"
