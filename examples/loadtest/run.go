package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/reflow-go/reflow/dtlssrtp"
	"github.com/reflow-go/reflow/flowmanager"
)

// runOneProcess sets up o.n pairs between two managers in this process and
// runs media between them.
func runOneProcess(ctx context.Context, o *opts) (*report, error) {
	mA, err := o.newManager("loadtest-a")
	if err != nil {
		return nil, err
	}
	defer mA.Close()
	mB, err := o.newManager("loadtest-b")
	if err != nil {
		return nil, err
	}
	defer mB.Close()
	r := newReport(o, "one-process", 2*o.n)
	r.sampleBaseline()

	eps := make([]*endpoint, 2*o.n)
	for i := range eps {
		eps[i] = &endpoint{idx: i, ssrc: uint32(0x10000 + i)}
	}
	defer closeAll(eps)
	setupStart := time.Now()
	o.printf("setting up %d pairs (nat %s, srtp %s)\n", o.n, o.natName, o.srtpMode)
	setupPairs(ctx, o, mA, mB, eps)
	r.setupDone(eps, time.Since(setupStart))
	o.printf("setup: %d/%d streams up in %v, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed\n",
		r.Setup.Up, r.Setup.Streams, time.Since(setupStart).Round(time.Millisecond),
		r.Setup.P50Ms, r.Setup.P99Ms, r.Setup.MaxMs, r.Setup.Failed)
	if err := ctx.Err(); err != nil {
		return r, nil
	}
	return r, runMedia(ctx, o, r, eps)
}

// setupPairs sets up pair i as eps[2i] (manager a, DTLS client) and eps[2i+1]
// (manager b, DTLS server), o.parallel pairs at a time (0: all at once), and
// returns when every stream is up or failed, or the setup timeout passed.
func setupPairs(ctx context.Context, o *opts, mA, mB *flowmanager.Manager, eps []*endpoint) {
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var fpA, fpB dtlssrtp.Fingerprint
	if o.srtpMode == "dtls" {
		fpA, _ = mA.Fingerprint()
		fpB, _ = mB.Fingerprint()
	}
	par := o.parallel
	if par <= 0 {
		par = len(eps) / 2
	}
	sem := make(chan struct{}, par)
	var configured sync.WaitGroup
	configured.Add(len(eps) / 2)
	for i := 0; i < len(eps); i += 2 {
		a, b := eps[i], eps[i+1]
		go func() {
			defer configured.Done()
			select {
			case sem <- struct{}{}:
			case <-sctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := setupPair(sctx, o, mA, mB, a, b, fpA, fpB); err != nil {
				a.setErr(err)
				b.setErr(err)
			}
		}()
	}
	if o.srtpMode == "dtls" {
		watchSecure(sctx, eps) // -parallel bounds stream creation, not handshakes in flight
	}
	configured.Wait()
}

func setupPair(ctx context.Context, o *opts, mA, mB *flowmanager.Manager, a, b *endpoint, fpA, fpB dtlssrtp.Fingerprint) error {
	if err := a.open(ctx, mA, o); err != nil {
		return err
	}
	if err := b.open(ctx, mB, o); err != nil {
		return err
	}
	if err := a.waitReady(ctx); err != nil {
		return err
	}
	if err := b.waitReady(ctx); err != nil {
		return err
	}
	// The DTLS server first, so that the client's first flight finds it listening.
	if err := b.configure(a.info(fpA), o, dtlssrtp.Server); err != nil {
		return err
	}
	return a.configure(b.info(fpB), o, dtlssrtp.Client)
}

// closeAll closes every stream that was opened.
func closeAll(eps []*endpoint) {
	var wg sync.WaitGroup
	for _, e := range eps {
		if e.s != nil {
			wg.Add(1)
			go func() { defer wg.Done(); e.s.Close() }()
		}
		for _, c := range e.raw {
			if c != nil {
				c.c.Close()
			}
		}
	}
	wg.Wait()
}

// runMedia measures idle cost (-idle) or runs media for o.duration, printing a
// status line per second, and fills the report.
func runMedia(ctx context.Context, o *opts, r *report, eps []*endpoint) error {
	live := slices.DeleteFunc(slices.Clone(eps), func(e *endpoint) bool { return !e.up.Load() })
	m := &media{eps: live, epoch: time.Now()}
	if o.readers {
		m.startReaders()
	}
	// Let the setup goroutines end and the readers block.
	select {
	case <-time.After(o.settle):
	case <-ctx.Done():
	}
	r.sampleUp(len(live))
	if err := writeProfiles(o.profile, "up"); err != nil {
		return err
	}
	if o.idle {
		r.finish(eps, sampleProc())
		return nil
	}
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopProf, err := startCPUProfile(o.profile, "media")
	if err != nil {
		return err
	}
	defer stopProf()
	start := sampleProc()
	r.mediaStart = start
	m.startSenders(mctx, o.senders)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.After(o.duration)
	prev, prevS := sum(live), start
loop:
	for {
		select {
		case <-ctx.Done():
			o.printf("interrupted\n")
			break loop
		case <-end:
			break loop
		case <-tick.C:
			cur, s := sum(live), sampleProc()
			o.statusLine(s.at.Sub(start.at), cur, prev, s, prevS, len(eps))
			r.samples = append(r.samples, s)
			prev, prevS = cur, s
		}
	}
	cancel()
	m.wg.Wait()
	stopS := sampleProc()
	stopProf()
	time.Sleep(300 * time.Millisecond) // packets in flight
	r.finishMedia(start, stopS)
	r.finish(eps, stopS)
	r.Media.SkippedTicks = m.skipped.Load()
	closeAll(eps)
	m.readers.Wait()
	return nil
}

func (o *opts) statusLine(el time.Duration, cur, prev totals, s, ps procSample, streams int) {
	if o.quiet {
		return
	}
	dt := s.at.Sub(ps.at).Seconds()
	tx := float64(cur.sent-prev.sent) / dt
	rx := float64(cur.received-prev.received) / dt
	loss := 0.0
	if cur.expected > 0 {
		loss = 100 * float64(cur.expected-min(cur.expected, cur.received)) / float64(cur.expected)
	}
	fmt.Fprintf(os.Stderr, "%4.0fs up %d/%d tx %.0f pkt/s rx %.0f pkt/s loss %.4f%% reord %d cpu %.2f cores rss %.1f MiB goroutines %d\n",
		el.Seconds(), cur.up, streams, tx, rx, loss, cur.reordered, cpuCores(ps, s), float64(s.rss)/(1<<20), s.goroutines)
}

// runChurn creates and closes o.churn streams, o.batch at a time (as pairs, with
// the chosen NAT and SRTP modes), and checks goroutines and RSS come back.
func runChurn(ctx context.Context, o *opts) (*report, error) {
	mA, err := o.newManager("loadtest-a")
	if err != nil {
		return nil, err
	}
	defer mA.Close()
	mB, err := o.newManager("loadtest-b")
	if err != nil {
		return nil, err
	}
	defer mB.Close()
	r := newReport(o, "churn", o.churn)
	r.Run.Pairs = o.batch / 2 // at a time
	r.sampleBaseline()
	c := &churnReport{Batch: o.batch, StartGoroutines: r.base.goroutines, StartRSSKiB: r.base.rss >> 10}
	r.Churn = c
	start := time.Now()
	var times []time.Duration
	for done := 0; done < o.churn && ctx.Err() == nil; done += o.batch {
		eps := make([]*endpoint, o.batch)
		for i := range eps {
			eps[i] = &endpoint{idx: i, ssrc: uint32(i)}
		}
		setupPairs(ctx, o, mA, mB, eps)
		for _, e := range eps {
			if e.up.Load() {
				times = append(times, e.setupTime())
			} else {
				c.Failed++
				if err := e.failure(); err != nil && c.FirstError == "" {
					c.FirstError = err.Error()
				}
			}
		}
		closeAll(eps)
		c.Streams += len(eps)
		if c.Streams%1000 == 0 {
			s := gcSample()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			c.Trend = append(c.Trend, churnPoint{c.Streams, s.goroutines, s.rss >> 10, ms.HeapAlloc >> 10})
			if c.Streams == 1000 || c.Streams+o.batch > o.churn {
				if err := writeProfiles(o.profile, fmt.Sprintf("churn%d", c.Streams)); err != nil {
					return r, err
				}
			}
			if c.Streams == 1000 {
				c.After1000Goroutines, c.After1000RSSKiB, c.After1000HeapKiB = s.goroutines, s.rss>>10, ms.HeapAlloc>>10
			}
			o.printf("%6.1fs churned %d streams, goroutines %d, rss %.1f MiB, streams open a=%d b=%d\n",
				time.Since(start).Seconds(), c.Streams, s.goroutines, float64(s.rss)/(1<<20), mA.Streams(), mB.Streams())
		}
	}
	c.Seconds = time.Since(start).Seconds()
	time.Sleep(200 * time.Millisecond)
	end := gcSample()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	c.EndGoroutines, c.EndRSSKiB, c.EndHeapKiB = end.goroutines, end.rss>>10, ms.HeapAlloc>>10
	if c.After1000RSSKiB > 0 {
		c.RSSChangePct = 100 * (float64(c.EndRSSKiB) - float64(c.After1000RSSKiB)) / float64(c.After1000RSSKiB)
	}
	c.GoroutinesBack = c.EndGoroutines <= c.StartGoroutines
	r.Setup.Streams, r.Setup.Up, r.Setup.Failed = c.Streams, c.Streams-c.Failed, c.Failed
	r.setPercentiles(times)
	r.finish(nil, end)
	if c.Failed > 0 {
		return r, errors.New("churn: some streams failed")
	}
	return r, nil
}
