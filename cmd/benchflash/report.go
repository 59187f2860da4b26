package main

import (
	"fmt"
	"slices"
	"strconv"
	"text/tabwriter"
)

// Row is the table's line for one mode at one client count: the medians
// over its rounds.
type Row struct {
	Clients            int
	Mode               mode
	Rounds             int
	DecisionsPerSecond float64 // median
	P50, P99           float64 // medians, ms
	Errors             int64   // sum over the rounds
	ChecksFailed       int     // rounds whose check failed
	RowLockPool        int     // mode c's pool; 0 for bookd
	// ServerCPU, PostgresCPU and LoadgenCPU are medians in µs per decision;
	// 0: unknown.
	ServerCPU, PostgresCPU, LoadgenCPU float64
}

// Ratio compares modes a, b and c at one client count by their median
// decisions/s; a ratio is 0 when a mode of it did not run.
type Ratio struct {
	Clients int
	AC, AB  float64
	// P99A is mode a's median p99 in ms.
	P99A float64
}

// summarize groups results by client count (in the order they ran) and
// mode.
func summarize(results []Result) ([]Row, []Ratio) {
	var clients []int
	for _, r := range results {
		if !slices.Contains(clients, r.Clients) {
			clients = append(clients, r.Clients)
		}
	}
	var rows []Row
	var ratios []Ratio
	for _, c := range clients {
		byMode := map[string]Row{}
		for _, md := range modes {
			var rps, p50, p99, srv, pgc, lgc []float64
			row := Row{Clients: c, Mode: md}
			for _, r := range results {
				if r.Clients != c || r.Mode != md.Key {
					continue
				}
				row.Rounds++
				rps, p50, p99 = append(rps, r.DecisionsPerSecond), append(p50, r.P50), append(p99, r.P99)
				srv, pgc, lgc = append(srv, r.ServerCPU), append(pgc, r.PostgresCPU), append(lgc, r.LoadgenCPU)
				row.Errors += r.Errors
				if !r.CheckOK {
					row.ChecksFailed++
				}
				row.RowLockPool = r.RowLockPool
			}
			if row.Rounds == 0 {
				continue
			}
			row.DecisionsPerSecond, row.P50, row.P99 = median(rps), median(p50), median(p99)
			row.ServerCPU, row.PostgresCPU, row.LoadgenCPU = median(srv), median(pgc), median(lgc)
			rows = append(rows, row)
			byMode[md.Key] = row
		}
		ra := Ratio{Clients: c, P99A: byMode["a"].P99}
		a := byMode["a"].DecisionsPerSecond
		if b := byMode["b"].DecisionsPerSecond; a > 0 && b > 0 {
			ra.AB = a / b
		}
		if cc := byMode["c"].DecisionsPerSecond; a > 0 && cc > 0 {
			ra.AC = a / cc
		}
		ratios = append(ratios, ra)
	}
	return rows, ratios
}

// median of xs (not empty); xs is sorted in place.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// writeSetup prints what the numbers were measured on.
func (m *Main) writeSetup(si serverInfo, bin string) {
	fmt.Fprintf(m.Stdout, "benchflash: one hot single-slot resource per run, capacity %d (every decision is a write)\n", m.Requests)
	fmt.Fprintf(m.Stdout, "machine:    %s\n", machine())
	fmt.Fprintf(m.Stdout, "postgres:   %s, fsync %s, synchronous_commit %s, max_connections %s\n",
		si.Version, si.Fsync, si.SynchronousCommit, si.MaxConnections)
	procs := "one per CPU"
	if m.LoadgenProcs > 0 {
		procs = strconv.Itoa(m.LoadgenProcs)
	}
	fmt.Fprintf(m.Stdout, "loadgen:    %s loadgen --requests %d --duration %v --timeout %v --livez-requests -1, GOMAXPROCS %s, rounds %d\n",
		bin, m.Requests, m.Duration, m.Timeout, procs, m.Rounds)
	fmt.Fprintf(m.Stdout, "modes:      a = bookd --batch-max %d; b = bookd --batch-max 1; c = row lock, pool %s\n",
		m.BatchMax, m.poolText())
}

func (m *Main) poolText() string {
	if m.RowLockPool > 0 {
		return fmt.Sprintf("%d connections", m.RowLockPool)
	}
	return fmt.Sprintf("one connection per client, at most %d", rowLockPoolMax)
}

// writeTable prints the rows, then the ratios and the goal's verdict.
func (m *Main) writeTable() {
	rows, ratios := summarize(m.Results)
	if len(rows) == 0 {
		return
	}
	median := ""
	if m.Rounds > 1 {
		median = fmt.Sprintf(" (medians of %d rounds)", m.Rounds)
	}
	fmt.Fprintf(m.Stdout, "\nresults%s\n", median)
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tmode\tdecisions/s\tp50 ms\tp99 ms\terrors\tcheck\tserver µs/dec\tpostgres µs/dec\tloadgen µs/dec\t")
	for _, r := range rows {
		name := r.Mode.Key + " " + r.Mode.Name
		if r.RowLockPool > 0 {
			name += fmt.Sprintf(" (pool %d)", r.RowLockPool)
		}
		check := "ok"
		if r.ChecksFailed > 0 {
			check = fmt.Sprintf("FAILED %d/%d", r.ChecksFailed, r.Rounds)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t%s\t\n", r.Clients, name, r.DecisionsPerSecond, r.P50, r.P99, r.Errors, check,
			cpuText(r.ServerCPU), cpuText(r.PostgresCPU), cpuText(r.LoadgenCPU))
	}
	_ = tw.Flush()

	fmt.Fprintln(m.Stdout, "\nratios of decisions/s; the HTTP ceiling (GET /livez on bookd, same clients) and a's share of it")
	tw = tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\ta/c\ta/b\t/livez/s\t/livez p99 ms\ta/ceiling\tbookd µs/livez\tloadgen µs/livez\t")
	for _, ra := range ratios {
		ceil, p99, share, srv, lg := "-", "-", "-", "-", "-"
		for _, c := range m.Ceilings {
			if c.Clients != ra.Clients || c.RequestsPerSecond <= 0 {
				continue
			}
			ceil, p99 = fmt.Sprintf("%.0f", c.RequestsPerSecond), fmt.Sprintf("%.2f", c.P99)
			srv, lg = cpuText(c.ServerCPU), cpuText(c.LoadgenCPU)
			for _, r := range rows {
				if r.Clients == ra.Clients && r.Mode.Key == "a" {
					share = fmt.Sprintf("%.0f%%", 100*r.DecisionsPerSecond/c.RequestsPerSecond)
				}
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", ra.Clients, ratioText(ra.AC), ratioText(ra.AB), ceil, p99, share, srv, lg)
	}
	_ = tw.Flush()

	fmt.Fprintf(m.Stdout, "\nmachine at the end: %s\n", machine())
	for _, ra := range ratios {
		if ra.Clients != goalClients || ra.AC == 0 {
			continue
		}
		met := "met"
		if ra.AC < goalRatio || ra.P99A > goalP99 {
			met = "NOT met"
		}
		fmt.Fprintf(m.Stdout, "\ngoal at %d clients: a/c %.1f× (want ≥ %.0f×), p99 of a %.2f ms (want ≤ %.0f ms): %s\n",
			goalClients, ra.AC, goalRatio, ra.P99A, goalP99, met)
	}
}

// The goal of issue 3 on one hot resource.
const (
	goalClients = 256
	goalRatio   = 10.0
	goalP99     = 50.0 // ms
)

func cpuText(us float64) string {
	if us <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", us)
}

func ratioText(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", x)
}
