package bench

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/e2e/harness"
)

type report struct {
	started, finished     time.Time
	loadBefore, loadAfter string
	corpus, sigma         bool
	notes                 []string

	rawPub, rawCons float64
	rawBytes        int
	ceilings        []ceiling
	steps           []step
	sustained       int
	stepsNoCH       []step
	sustainedNoCH   int
	latency         []latency
	peer            peer
}

func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%d", d.Round(time.Millisecond).Milliseconds())
}

func lat(s harness.Summary) string {
	if s.Seen == 0 {
		return fmt.Sprintf("none of %d", s.Sent)
	}
	missing := ""
	if s.Seen < s.Sent {
		missing = fmt.Sprintf(" (%d of %d seen)", s.Seen, s.Sent)
	}
	return fmt.Sprintf("%s / %s%s", ms(s.P50), ms(s.P99), missing)
}

func mib(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

func (r *report) stepTable(w func(string, ...any), steps []step) {
	w("| offered events/s | generated | collector | processor | sink-file | sink-clickhouse | sink-elasticsearch | total | flat | drained after |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range steps {
		drain := s.drain.Round(time.Second).String()
		if !s.drained {
			drain = "not within " + drain
		}
		ch := "–"
		if v, ok := s.slopes["sink-clickhouse"]; ok {
			ch = fmt.Sprintf("%.0f", v)
		}
		w("| %d | %d | %.0f | %.0f | %.0f | %s | %.0f | %.0f ± %.0f | %s | %s |\n", s.rate, s.generated,
			s.slopes["collector"], s.slopes["processor"], s.slopes["sink-file"], ch, s.slopes["sink-elasticsearch"],
			s.total, s.totalSE, map[bool]string{true: "yes", false: "**no** (" + s.bottleneck + ")"}[s.pass], drain)
	}
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("Run of %s UTC, %s, commit %s, %d CPUs; load average (1/5/15 min) %s before, %s after.\n\n",
		r.started.Format("2006-01-02 15:04"), r.finished.Sub(r.started).Round(time.Second), commit(), runtime.NumCPU(), r.loadBefore, r.loadAfter)
	mixNote := "Kubernetes audit (the bundled replay sample"
	if r.corpus {
		mixNote += " alternating with the first 5,000 hkerma records"
	}
	mixNote += "; one in 50 a service account listing secrets, which a built-in rule alerts on) 80 %, Tetragon (bundled sample) 15 %, Falco (bundled sample) 5 %; every record with a fresh id and the current time."
	w("Mix: %s Rules: built-in pack%s.\n\n", mixNote, map[bool]string{true: " + SigmaHQ Kubernetes and Linux rules", false: " only"}[r.sigma])
	for _, n := range r.notes {
		w("- %s\n", n)
	}
	if len(r.notes) > 0 {
		w("\n")
	}

	w("**Stage ceilings** (%d records of the mix, ~%d B each; each stage alone on the backlog the previous one left):\n\n", r.ceilings[0].items, r.rawBytes)
	w("| stage | items/s | ratio to raw JetStream | stage CPU per item | nats-server CPU meanwhile |\n|---|---|---|---|---|\n")
	w("| raw JetStream publish (async, msg id, ≤ 4096 in flight) | %.0f | 1 | – | – |\n", r.rawPub)
	w("| raw JetStream consume (pull, fetch 500, ack each) | %.0f | 1 | – | – |\n", r.rawCons)
	for _, c := range r.ceilings {
		ref, against := r.rawCons, "consume"
		if c.stage == "collector" {
			ref, against = r.rawPub, "publish"
		}
		w("| %s | %.0f | %.2f of %s | %.0f µs | %.1f cores |\n", c.stage, c.rate(), c.rate()/ref, against,
			float64(c.cpu.Microseconds())/float64(c.items), c.natsCPU.Seconds()/c.wall.Seconds())
	}

	w("\n**Stepped rates** (backlog growth over each step's last two thirds, items/s, least squares on 1 s samples; not flat = the total grows by more than %.0f %% of the rate and by more than twice its standard error):\n\n", flatShare*100)
	r.stepTable(w, r.steps)
	w("\n**Sustained rate: %d events/s** (the highest flat step).\n\n", r.sustained)
	if len(r.stepsNoCH) > 0 {
		w("**Without the ClickHouse sink** (its process stopped after the latency phases; the rates above the sustained one again):\n\n")
		r.stepTable(w, r.stepsNoCH)
		w("\n**Sustained rate without the ClickHouse sink: %d events/s.**\n\n", r.sustainedNoCH)
	}

	w("**Latency** at fractions of it, p50 / p99 in ms (send = the generator's write or POST; file sink: the line read from its file, polled every 50 ms; ClickHouse and Elasticsearch: one in %d audit/Falco records looked up every 250 ms; alert: the alert's line in the file sink):\n\n", probeEvery)
	w("| load | events/s | collector → file sink | → ClickHouse | → Elasticsearch (search-visible) | collector → alert (file sink) |\n|---|---|---|---|---|---|\n")
	for _, l := range r.latency {
		w("| %d %% | %d | %s | %s | %s | %s |\n", l.pct, l.rate, lat(l.file), lat(l.ch), lat(l.es), lat(l.alert))
	}
	if len(r.latency) > 0 {
		w("\n**CPU (cores) and RSS per process** during the latency phases (utime+stime from /proc/<pid>/stat over the phase; RSS at the end of the 75 %% phase and peak VmHWM over the whole run, MiB):\n\n")
		w("| process |")
		for _, l := range r.latency {
			w(" CPU at %d %% |", l.pct)
		}
		w(" RSS | peak RSS |\n|---|")
		for range r.latency {
			w("---|")
		}
		w("---|---|\n")
		last := r.latency[len(r.latency)-1]
		var totals []float64 = make([]float64, len(r.latency))
		for _, name := range []string{"nats-server", "collector", "processor", "sink-file", "sink-clickhouse", "sink-elasticsearch"} {
			w("| %s |", name)
			for i, l := range r.latency {
				w(" %.2f |", l.cpu[name])
				totals[i] += l.cpu[name]
			}
			w(" %s | %s |\n", mib(last.rss[name]), mib(last.peak[name]))
		}
		w("| all (events per CPU-second) |")
		for i, l := range r.latency {
			w(" %.2f (%.0f) |", totals[i], float64(l.generated)/l.dur.Seconds()/totals[i])
		}
		w(" | |\n")
	}

	if len(r.peer.benthosCPU) > 0 {
		bc, nc := median(r.peer.benthosCPU), median(r.peer.normCPU)
		bw, nw := median(r.peer.benthosWall), median(r.peer.normWall)
		n := float64(r.peer.n)
		w("\n**Peer** (%d audit records of the same mix, file → mapping → file, medians of %d runs):\n\n", r.peer.n, r.peer.runs)
		w("| | events/s | events per CPU-second |\n|---|---|---|\n")
		w("| Benthos v4 (bloblang mapping of bench/peer) | %.0f | %.0f |\n", n/bw.Seconds(), n/bc.Seconds())
		w("| crowsnest normalize --source k8s_audit | %.0f | %.0f |\n", n/nw.Seconds(), n/nc.Seconds())
		w("| ratio crowsnest / Benthos | %.1f× | %.1f× |\n", bw.Seconds()/nw.Seconds(), bc.Seconds()/nc.Seconds())
		if len(r.ceilings) > 0 {
			// Every stage's CPU per item at its ceiling, and nats-server's
			// meanwhile, summed: the pipeline's CPU per event when busy,
			// without the fixed cost idle processes pay at low rates.
			per := 0.0
			for _, c := range r.ceilings {
				per += (c.cpu + c.natsCPU).Seconds() / float64(c.items)
			}
			w("| crowsnest end to end, every stage's CPU per item at its ceiling plus nats-server's, summed (collector, JetStream, processor with rules, three sinks) | – | %.0f (%.2f× Benthos's file → file) |\n", 1/per, 1/per/(n/bc.Seconds()))
		}
		if len(r.latency) > 0 {
			l := r.latency[len(r.latency)-1]
			tot := 0.0
			for _, v := range l.cpu {
				tot += v
			}
			w("| crowsnest end to end at the 75 %% phase, every process | %.0f | %.0f |\n",
				float64(l.generated)/l.dur.Seconds(), float64(l.generated)/l.dur.Seconds()/tot)
		}
	}
	return b.String()
}
