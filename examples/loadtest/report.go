package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reflow-go/reflow/flow"
)

// report is the final table (and the -json document).
type report struct {
	Run struct {
		Mode     string  `json:"mode"` // one-process, listen, connect, churn
		Pairs    int     `json:"pairs"`
		NAT      string  `json:"nat"`
		SRTP     string  `json:"srtp"`
		Suite    string  `json:"suite,omitempty"`
		Duration float64 `json:"duration_s"`
		CPUs     int     `json:"cpus"`
		Go       string  `json:"go"`
		Load     string  `json:"loadavg_at_start"`
	} `json:"run"`
	Setup struct {
		Streams int     `json:"streams"`
		Up      int     `json:"up"`
		Failed  int     `json:"failed"`
		Error   string  `json:"first_error,omitempty"`
		P50Ms   float64 `json:"p50_ms"`
		P99Ms   float64 `json:"p99_ms"`
		MaxMs   float64 `json:"max_ms"`
		WallMs  float64 `json:"all_up_ms"`
	} `json:"setup"`
	Media     *mediaReport `json:"media,omitempty"`
	Resources struct {
		CPUSeconds          float64 `json:"cpu_s_total"`
		BaselineRSSKiB      int64   `json:"baseline_rss_kib"`
		UpRSSKiB            int64   `json:"up_rss_kib"`
		PeakRSSKiB          int64   `json:"peak_rss_kib"`
		RSSPerStreamKiB     float64 `json:"rss_per_stream_kib"`
		ScavengedRSSKiB     int64   `json:"up_rss_after_free_os_memory_kib"`
		RSSPerStreamFloor   float64 `json:"rss_per_stream_after_free_os_memory_kib"`
		HeapPerStreamKiB    float64 `json:"heap_live_per_stream_kib"`
		StackPerStreamKiB   float64 `json:"goroutine_stack_per_stream_kib"`
		BaselineGoroutines  int     `json:"baseline_goroutines"`
		UpGoroutines        int     `json:"up_goroutines"`
		ToolGoroutines      int     `json:"tool_goroutines"`
		LibraryGoroutines   int     `json:"library_goroutines"`
		LibGoroutinesFlow   float64 `json:"library_goroutines_per_flow"`
		LibGoroutinesStream float64 `json:"library_goroutines_per_stream"`
		AllGoroutinesStream float64 `json:"all_goroutines_per_stream"`
	} `json:"resources"`
	Churn *churnReport `json:"churn,omitempty"`

	base, up   procSample
	baseMem    runtime.MemStats
	mediaStart procSample
	samples    []procSample
	upStreams  int
	flowsPer   int
}

// mediaReport is the media part of the report.
type mediaReport struct {
	Seconds       float64           `json:"seconds"`
	Sent          uint64            `json:"rtp_sent"`
	Received      uint64            `json:"rtp_received"`
	Expected      uint64            `json:"rtp_expected"`
	Lost          uint64            `json:"rtp_lost"`
	LossPct       float64           `json:"loss_pct"`
	Reordered     uint64            `json:"reordered"`
	JitterMeanMs  float64           `json:"jitter_mean_ms"`
	JitterMaxMs   float64           `json:"jitter_max_ms"`
	RTCPSent      uint64            `json:"rtcp_sent"`
	RTCPReceived  uint64            `json:"rtcp_received"`
	SendErrors    uint64            `json:"send_errors"`
	FailedAfterUp uint64            `json:"failures_after_up"`
	Drops         map[string]uint64 `json:"library_drops,omitempty"`
	PktPerSec     float64           `json:"rx_pkt_per_s"`
	CPUCores      float64           `json:"cpu_cores_avg"`
	CPUSeconds    float64           `json:"cpu_s"`
	SkippedTicks  uint64            `json:"sender_skipped_ticks"`
}

// churnReport is the result of -churn.
type churnReport struct {
	Streams             int     `json:"streams"`
	Batch               int     `json:"batch"`
	Failed              int     `json:"failed"`
	FirstError          string  `json:"first_error,omitempty"`
	Seconds             float64 `json:"seconds"`
	StartGoroutines     int     `json:"start_goroutines"`
	After1000Goroutines int     `json:"after_1000_goroutines"`
	EndGoroutines       int     `json:"end_goroutines"`
	GoroutinesBack      bool    `json:"goroutines_back_to_start"`
	StartRSSKiB         int64   `json:"start_rss_kib"`
	After1000RSSKiB     int64   `json:"after_1000_rss_kib"`
	EndRSSKiB           int64   `json:"end_rss_kib"`
	RSSChangePct        float64 `json:"rss_change_vs_after_1000_pct"`
	After1000HeapKiB    uint64  `json:"after_1000_heap_kib"`
	EndHeapKiB          uint64  `json:"end_heap_kib"`
	// Trend has one point per 1000 streams (after a GC): is growth a leak or noise?
	Trend []churnPoint `json:"trend"`
}

// churnPoint is the process after a number of streams were created and closed.
type churnPoint struct {
	Streams    int    `json:"streams"`
	Goroutines int    `json:"goroutines"`
	RSSKiB     int64  `json:"rss_kib"`
	HeapKiB    uint64 `json:"heap_live_kib"`
}

func newReport(o *opts, mode string, streams int) *report {
	r := &report{flowsPer: 1}
	if o.rtcp {
		r.flowsPer = 2
	}
	r.Run.Mode, r.Run.Pairs, r.Run.NAT, r.Run.SRTP = mode, o.n, o.natName, o.srtpMode
	if o.srtpMode == "sdes" {
		r.Run.Suite = o.suite
	}
	r.Run.Duration = o.duration.Seconds()
	if o.idle {
		r.Run.Duration = 0
	}
	r.Run.CPUs, r.Run.Go = runtime.NumCPU(), runtime.Version()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil && len(b) > 14 {
		r.Run.Load = string(b[:14])
	}
	r.Setup.Streams = streams
	return r
}

// sampleBaseline records the idle process (managers made, nothing open).
func (r *report) sampleBaseline() {
	r.base = gcSample()
	runtime.ReadMemStats(&r.baseMem)
	r.Resources.BaselineRSSKiB = r.base.rss >> 10
	r.Resources.BaselineGoroutines = r.base.goroutines
}

func (r *report) setupDone(eps []*endpoint, wall time.Duration) {
	var times []time.Duration
	for _, e := range eps {
		if e.up.Load() {
			times = append(times, e.setupTime())
			continue
		}
		r.Setup.Failed++
		if err := e.failure(); err != nil && r.Setup.Error == "" {
			r.Setup.Error = err.Error()
		}
	}
	r.Setup.Up = len(times)
	r.Setup.WallMs = ms(wall)
	r.setPercentiles(times)
}

func (r *report) setPercentiles(times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	pct := func(p float64) time.Duration { return times[min(len(times)-1, int(p*float64(len(times))))] }
	r.Setup.P50Ms, r.Setup.P99Ms, r.Setup.MaxMs = ms(pct(0.50)), ms(pct(0.99)), ms(times[len(times)-1])
}

// sampleUp records RSS and goroutines with every stream up (before media).
func (r *report) sampleUp(streams int) {
	r.up = gcSample()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	r.upStreams = streams
	res := &r.Resources
	res.UpRSSKiB = r.up.rss >> 10
	res.UpGoroutines = r.up.goroutines
	res.ToolGoroutines = int(toolGoroutines.Load())
	res.LibraryGoroutines = r.up.goroutines - r.base.goroutines - res.ToolGoroutines
	if streams > 0 {
		res.RSSPerStreamKiB = float64(r.up.rss-r.base.rss) / 1024 / float64(streams)
		res.HeapPerStreamKiB = (float64(mem.HeapAlloc) - float64(r.baseMem.HeapAlloc)) / 1024 / float64(streams)
		res.StackPerStreamKiB = (float64(mem.StackInuse) - float64(r.baseMem.StackInuse)) / 1024 / float64(streams)
		// What the process needs once the runtime has returned free pages
		// (debug.FreeOSMemory); the figure above is what the OS sees as is.
		debug.FreeOSMemory()
		floor := sampleProc()
		res.ScavengedRSSKiB = floor.rss >> 10
		res.RSSPerStreamFloor = float64(floor.rss-r.base.rss) / 1024 / float64(streams)
		res.LibGoroutinesStream = float64(res.LibraryGoroutines) / float64(streams)
		res.LibGoroutinesFlow = res.LibGoroutinesStream / float64(r.flowsPer)
		res.AllGoroutinesStream = float64(r.up.goroutines-r.base.goroutines) / float64(streams)
	}
}

func (r *report) finishMedia(start, stop procSample) {
	r.Media = &mediaReport{}
	r.Media.Seconds = stop.at.Sub(start.at).Seconds()
	r.Media.CPUCores = cpuCores(start, stop)
	r.Media.CPUSeconds = (stop.cpu - start.cpu).Seconds()
}

// finish fills in the packet totals (from eps) and the process figures.
func (r *report) finish(eps []*endpoint, end procSample) {
	if r.Media != nil {
		t := sum(eps)
		md := r.Media
		md.Sent, md.Received, md.Expected, md.Reordered = t.sent, t.received, t.expected, t.reordered
		md.Lost = t.expected - min(t.expected, t.received)
		if t.expected > 0 {
			md.LossPct = 100 * float64(md.Lost) / float64(t.expected)
		}
		if t.withRx > 0 {
			md.JitterMeanMs = t.jitterSum / float64(t.withRx)
		}
		md.JitterMaxMs = t.jitterMax
		md.RTCPSent, md.RTCPReceived, md.SendErrors, md.FailedAfterUp = t.rtcpSent, t.rtcpIn, t.sendErrs, t.failed
		if md.Seconds > 0 {
			md.PktPerSec = float64(t.received) / md.Seconds
		}
		var drops [flow.NumDropReasons]uint64
		for _, e := range eps {
			if e.s == nil {
				continue
			}
			for _, f := range e.s.Flows() {
				st := f.Stats()
				for i, d := range st.Dropped {
					drops[i] += d
				}
			}
		}
		for i, d := range drops {
			if d > 0 {
				if md.Drops == nil {
					md.Drops = map[string]uint64{}
				}
				md.Drops[flow.DropReason(i).String()] = d
			}
		}
	}
	r.Resources.CPUSeconds = end.cpu.Seconds()
	r.Resources.PeakRSSKiB = end.hwm >> 10
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r *report) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	p := func(k, format string, a ...any) { fmt.Fprintf(w, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	run := r.Run
	fmt.Fprintln(w, "---- loadtest report ----")
	p("run", "%s, %d pairs, nat %s, srtp %s %s, %d CPUs, %s, load at start %s", run.Mode, run.Pairs, run.NAT, run.SRTP, run.Suite, run.CPUs, run.Go, run.Load)
	s := r.Setup
	p("streams up", "%d of %d (%d failed)", s.Up, s.Streams, s.Failed)
	if s.Error != "" {
		p("first error", "%s", s.Error)
	}
	p("setup time", "p50 %.2f ms  p99 %.2f ms  max %.2f ms  (all up after %.0f ms)", s.P50Ms, s.P99Ms, s.MaxMs, s.WallMs)
	if md := r.Media; md != nil {
		p("media", "%.1f s, RTP sent %d, received %d of %d expected (%.0f pkt/s received)", md.Seconds, md.Sent, md.Received, md.Expected, md.PktPerSec)
		p("loss", "%d packets = %.5f%%", md.Lost, md.LossPct)
		p("reordering", "%d packets arrived late", md.Reordered)
		p("jitter (RFC 3550)", "mean %.3f ms  max %.3f ms", md.JitterMeanMs, md.JitterMaxMs)
		p("RTCP", "sent %d, received %d", md.RTCPSent, md.RTCPReceived)
		p("errors", "send %d, failures after up %d, library drops %v, sender ticks skipped %d", md.SendErrors, md.FailedAfterUp, md.Drops, md.SkippedTicks)
		p("CPU during media", "%.2f cores average (%.1f CPU s)", md.CPUCores, md.CPUSeconds)
	}
	res := r.Resources
	p("CPU total", "%.1f s", res.CPUSeconds)
	if res.UpRSSKiB > 0 {
		p("RSS", "baseline %.1f MiB, streams up %.1f MiB, peak %.1f MiB", float64(res.BaselineRSSKiB)/1024, float64(res.UpRSSKiB)/1024, float64(res.PeakRSSKiB)/1024)
	} else {
		p("RSS", "baseline %.1f MiB, peak %.1f MiB", float64(res.BaselineRSSKiB)/1024, float64(res.PeakRSSKiB)/1024)
	}
	if r.upStreams > 0 {
		p("RSS per stream", "%.1f KiB beyond the idle process (%d streams up): live heap %.1f KiB, goroutine stacks %.1f KiB; %.1f KiB after debug.FreeOSMemory",
			res.RSSPerStreamKiB, r.upStreams, res.HeapPerStreamKiB, res.StackPerStreamKiB, res.RSSPerStreamFloor)
		p("goroutines", "baseline %d, up %d: library %d (%.2f per stream, %.2f per flow), tool readers/senders %d; all %.2f per stream",
			res.BaselineGoroutines, res.UpGoroutines, res.LibraryGoroutines, res.LibGoroutinesStream, res.LibGoroutinesFlow, res.ToolGoroutines, res.AllGoroutinesStream)
	}
	if c := r.Churn; c != nil {
		p("churn", "%d streams in batches of %d in %.1f s, %d failed", c.Streams, c.Batch, c.Seconds, c.Failed)
		p("churn goroutines", "start %d, after 1000 %d, end %d (back to start: %v)", c.StartGoroutines, c.After1000Goroutines, c.EndGoroutines, c.GoroutinesBack)
		p("churn RSS", "start %.1f MiB, after 1000 %.1f MiB, end %.1f MiB (%+.1f%% vs after 1000)",
			float64(c.StartRSSKiB)/1024, float64(c.After1000RSSKiB)/1024, float64(c.EndRSSKiB)/1024, c.RSSChangePct)
		p("churn live heap", "after 1000 %d KiB, end %d KiB", c.After1000HeapKiB, c.EndHeapKiB)
		var tr []string
		for _, pt := range c.Trend {
			tr = append(tr, fmt.Sprintf("%dk:%.1f/%.1f", pt.Streams/1000, float64(pt.RSSKiB)/1024, float64(pt.HeapKiB)/1024))
		}
		p("churn trend", "streams:RSS/heap MiB %s", strings.Join(tr, " "))
	}
	w.Flush()
}

func (r *report) writeJSON(path string) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
