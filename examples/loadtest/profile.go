package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// writeProfiles writes the goroutine (grouped by stack, debug=1) and heap
// profiles into dir as NAME-goroutine.txt and NAME-heap.pprof.
func writeProfiles(dir, name string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range []struct{ prof, file string }{{"goroutine", name + "-goroutine.txt"}, {"heap", name + "-heap.pprof"}} {
		f, err := os.Create(filepath.Join(dir, p.file))
		if err != nil {
			return err
		}
		debug := 0
		if p.prof == "goroutine" {
			debug = 1
		}
		err = pprof.Lookup(p.prof).WriteTo(f, debug)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s profile: %w", p.prof, err)
		}
	}
	return nil
}

// startCPUProfile profiles the CPU into dir/NAME-cpu.pprof until the returned
// function is called.
func startCPUProfile(dir, name string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, name+"-cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
