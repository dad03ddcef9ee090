package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// chart draws, per round of / and per other scenario, throughput with vs without the
// collector, the collector's CPU per 1k requests and the kernel time per request, with gnuplot.
func chart(o options, work string, samples []sample) error {
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		log.Printf("gnuplot not found (apt-get install -y gnuplot-nox): results.png not written")
		return nil
	}
	type row struct {
		label                         string
		without, with, colSat, colFix float64
		kernel, kernelSat             float64
	}
	var rows []*row
	byLabel := map[string]*row{}
	for _, s := range samples {
		label := fmt.Sprintf("/ round %d", s.Round)
		if s.Scenario.name != "root" {
			label = s.Scenario.wrkPath
			if s.Scenario.script != "" {
				label = "/items/<id>"
			}
		}
		r := byLabel[label]
		if r == nil {
			r = &row{label: label}
			byLabel[label] = r
			rows = append(rows, r)
		}
		if !s.With {
			r.without = s.Wrk.RPS
			continue
		}
		d := derive(s)
		r.with, r.colSat, r.colFix, r.kernel, r.kernelSat = s.Wrk.RPS, d.collectorSat, d.collectorFixed, d.kernelUS, d.kernelSatUS
	}
	var data strings.Builder
	data.WriteString("# label without_rps with_rps collector_cpu_saturation collector_cpu_fixed kernel_us_fixed kernel_us_saturation\n")
	for _, r := range rows {
		fmt.Fprintf(&data, "%q %.1f %.1f %.3f %.3f %.3f %.3f\n", r.label, r.without, r.with, r.colSat, r.colFix, r.kernel, r.kernelSat)
	}
	dat := filepath.Join(work, "chart.dat")
	if err := os.WriteFile(dat, []byte(data.String()), 0o644); err != nil {
		return err
	}
	png, err := filepath.Abs(filepath.Join(o.out, "results.png"))
	if err != nil {
		return err
	}
	script := fmt.Sprintf(`set terminal pngcairo size 1500,540 font "sans,11" noenhanced
set output %[1]q
set multiplot layout 1,3 title "netintel overhead: nginx on loopback (1%% random 503; /healthy none), with vs without the collector"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key below
set grid ytics
set yrange [0:*]
set xtics rotate by -20
set title "max throughput (wrk -t%[3]d -c%[4]d)"
set ylabel "requests / s"
plot %[2]q using 2:xtic(1) title "without" lc rgb "#4c72b0", '' using 3 title "with collector" lc rgb "#dd8452"
set title "collector CPU per 1k requests (target <= %.0[6]f)"
set ylabel "CPU-ms per 1k requests (= mCPU per 1k req/s)"
plot %[2]q using 4:xtic(1) title "at saturation" lc rgb "#dd8452", '' using 5 title "at %[5]d req/s" lc rgb "#55a868", %[6]f with lines dt 2 lc rgb "#c44e52" title "target"
set title "eBPF kernel time per request (target <= %.0[7]f us)"
set ylabel "µs per request, both sides (bpf_stats)"
plot %[2]q using 6:xtic(1) title "at %[5]d req/s" lc rgb "#8172b3", '' using 7 title "at saturation" lc rgb "#937860", %[7]f with lines dt 2 lc rgb "#c44e52" title "target"
unset multiplot
`, png, dat, o.wrkThreads, o.wrkConns, o.rate, targetCollectorMCPU, targetKernelUS)
	gpPath := filepath.Join(work, "chart.gp")
	if err := os.WriteFile(gpPath, []byte(script), 0o644); err != nil {
		return err
	}
	if out, err := exec.Command(gp, gpPath).CombinedOutput(); err != nil {
		// pngcairo may be missing from a minimal gnuplot; fall back to the plain png terminal.
		script = strings.Replace(script, `set terminal pngcairo size 1500,540 font "sans,11" noenhanced`, "set terminal png size 1500,540 noenhanced", 1)
		if err2 := os.WriteFile(gpPath, []byte(script), 0o644); err2 != nil {
			return err2
		}
		if out2, err2 := exec.Command(gp, gpPath).CombinedOutput(); err2 != nil {
			return fmt.Errorf("gnuplot: %v\n%s\n%s", err2, out, out2)
		}
	}
	log.Printf("wrote %s", png)
	return nil
}
