package main

import (
	"math"
	"testing"
)

func TestSpreadOf(t *testing.T) {
	// Mean 0.93, squared deviations summing to 0.0052 over 5 rounds: t(0.95, 4) = 2.132.
	sp := spreadOf([]float64{0.88, 0.92, 0.93, 0.94, 0.98})
	half := 2.132 * math.Sqrt(0.0052/4/5)
	if math.Abs(sp.mean-0.93) > 1e-9 || math.Abs(sp.lo-(0.93-half)) > 1e-9 || math.Abs(sp.hi-(0.93+half)) > 1e-9 || sp.median != 0.93 {
		t.Fatalf("spread %+v, want mean 0.93 ± %.4f, median 0.93", sp, half)
	}
	if got := sp.atLeast(0.85); got != "met" {
		t.Errorf("0.93 ± %.3f against 0.85: %s, want met", half, got)
	}
	if got := sp.atLeast(0.90); got == "met" || got == "**missed**" {
		t.Errorf("0.93 ± %.3f against 0.90: %s, want not shown", half, got)
	}
	if got := sp.atLeast(0.99); got != "**missed**" {
		t.Errorf("0.93 ± %.3f against 0.99: %s, want missed", half, got)
	}
	// One round shows nothing.
	if got := spreadOf([]float64{0.95}).atLeast(0.90); got == "met" {
		t.Errorf("one round: %s", got)
	}
}

func TestRatiosByRound(t *testing.T) {
	with := []sample{{Round: 2, Wrk: wrkResult{RPS: 90}}, {Round: 1, Wrk: wrkResult{RPS: 45}}, {Round: 3, Wrk: wrkResult{RPS: 10}}}
	without := []sample{{Round: 1, Wrk: wrkResult{RPS: 50}}, {Round: 2, Wrk: wrkResult{RPS: 100}}}
	got := ratiosByRound(with, without)
	if len(got) != 2 || got[0] != 0.9 || got[1] != 0.9 {
		t.Fatalf("ratios %v, want [0.9 0.9] (round 3 has no session without)", got)
	}
}
