//go:build race

package intel

// raceEnabled shortens the million-exchange stream under the race detector.
const raceEnabled = true
