// Package browser runs headless Chromium (Debian's chromium) for end-to-end
// tests, only inside a network namespace that has nothing but a loopback
// interface, and gives the test a page to talk to.
//
// A test isolates itself first, then serves a page and starts the browser on
// it; page and test exchange JSON messages through fetch() (the page includes
// /harness.js, which defines sendToTest(obj) and recvFromTest()):
//
//	func TestCall(t *testing.T) {
//		if !browser.Isolate(t) {
//			return // ran again inside `unshare --net`; that run's result is this test's
//		}
//		page, err := browser.NewPage(html)
//		...
//		defer page.Close()
//		b, err := browser.Start(ctx, page.URL(), t.TempDir())
//		...
//		defer b.Kill()
//		var offer struct{ SDP string }
//		err = page.Recv(ctx, &offer)        // the page's sendToTest({sdp: ...})
//		err = page.Send(map[string]string{"sdp": answer}) // its recvFromTest()
//	}
//
// Isolate re-runs the calling test in the same test binary under `unshare
// --net` (util-linux's unshare), with the loopback
// interface up and no other interface, so the browser can reach nothing but
// the test. Chromium runs with --headless --no-sandbox --disable-gpu
// --disable-quic --no-first-run --disable-background-networking
// --disable-component-update --disable-sync
// --allow-loopback-in-peer-connection --use-fake-device-for-media-stream
// --use-fake-ui-for-media-stream and a fresh --user-data-dir.
//
// Without root it adds --map-root-user (an unprivileged user namespace).
// When chromium or unshare is missing the test is skipped with the
// reason, except under CI=true, where it fails.
//
// Concurrency: a Page's Send and Recv may be called from any goroutine; Close
// and Kill are idempotent. Nothing here outlives Close/Kill.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvNetNS is set to "1" in the environment of a test run that Isolate
// started inside a network namespace.
const EnvNetNS = "REFLOW_BROWSER_NETNS"

// ErrNotInstalled is returned when no Chromium binary is found.
var ErrNotInstalled = errors.New("browser: chromium is not installed")

// Binary returns the path of the Chromium binary (chromium, or
// chromium-browser).
func Binary() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// skip skips t with why, or fails it under CI=true.
func skip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("browser: %s (CI=true: not skipping)", why)
	}
	t.Skip("browser: " + why)
}

// Isolate runs the calling test inside a new network namespace with only
// the loopback interface. Inside (EnvNetNS=1) it brings lo up, checks that
// no other interface exists and returns true: the test goes on. Outside it
// runs the test binary again, for this test only, under `unshare --net`,
// logs that run's output, fails t if that run failed, and returns false:
// the caller returns at once.
func Isolate(t *testing.T) bool {
	t.Helper()
	if os.Getenv(EnvNetNS) == "1" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("browser: ip link set lo up: %v: %s", err, out)
		}
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback == 0 {
				t.Fatalf("browser: the namespace has interface %s besides lo", i.Name)
			}
		}
		return true
	}
	if _, err := Binary(); err != nil {
		skip(t, "chromium is not installed (Debian package chromium)")
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip(t, tool+" is not installed")
		}
	}
	args := []string{"--net"}
	if os.Geteuid() != 0 {
		// Not root: a user namespace maps us to root inside, which may
		// create the network namespace (when the kernel allows
		// unprivileged user namespaces).
		args = append(args, "--map-root-user")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var pat []string
	for _, part := range strings.Split(t.Name(), "/") {
		pat = append(pat, "^"+regexp.QuoteMeta(part)+"$")
	}
	timeout := 5 * time.Minute
	if dl, ok := t.Deadline(); ok {
		timeout = time.Until(dl) - 5*time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", append(args, "--", exe,
		"-test.run", strings.Join(pat, "/"), "-test.count=1", "-test.v",
		"-test.timeout", (timeout-time.Second).String())...)
	cmd.Env = append(os.Environ(), EnvNetNS+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("isolated run (unshare --net):\n%s", out)
	switch {
	case err != nil:
		t.Fatalf("browser: the isolated run failed: %v", err)
	case strings.Contains(string(out), "--- SKIP: "+t.Name()):
		skip(t, "the isolated run skipped")
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("browser: the isolated run did not run %s", t.Name())
	}
	return false
}

// Browser is a running headless Chromium.
type Browser struct {
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// Flags are the command-line flags Start gives Chromium (besides
// --user-data-dir and the URL).
var Flags = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--allow-loopback-in-peer-connection", "--use-fake-device-for-media-stream",
	"--use-fake-ui-for-media-stream"}

// Start launches Chromium on url with a fresh profile in dir (which must
// exist, e.g. t.TempDir()); its output goes to dir/chromium.log. It must run
// inside Isolate's namespace.
func Start(ctx context.Context, url, dir string) (*Browser, error) {
	if os.Getenv(EnvNetNS) != "1" {
		return nil, errors.New("browser: Start outside an isolated test (call Isolate first)")
	}
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := append(append([]string(nil), Flags...), "--user-data-dir="+filepath.Join(dir, "profile"), url)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("browser: start %s: %w", bin, err)
	}
	b := &Browser{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(b.done)
	}()
	context.AfterFunc(ctx, func() { _ = b.Kill() })
	return b, nil
}

// Done is closed when the browser process has exited.
func (b *Browser) Done() <-chan struct{} { return b.done }

// Kill kills the browser and all its processes (SIGKILL to its process
// group) and waits for it to exit. It is idempotent.
func (b *Browser) Kill() error {
	b.once.Do(func() {
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	})
	<-b.done
	return nil
}

// harnessJS is served as /harness.js.
const harnessJS = `
let __chain = Promise.resolve();
// sendToTest posts obj to the test; calls are delivered in order.
function sendToTest(obj) {
  __chain = __chain.then(() => fetch('/msg', {method: 'POST', body: JSON.stringify(obj)})).catch(() => {});
  return __chain;
}
// recvFromTest resolves with the test's next message.
async function recvFromTest() {
  for (;;) {
    const r = await fetch('/poll');
    if (r.status === 200) return await r.json();
  }
}
`

// Page serves one HTML page on 127.0.0.1 and carries JSON messages between
// it and the test.
type Page struct {
	srv      *http.Server
	url      string
	toPage   chan []byte
	fromPage chan []byte
	closed   chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
}

// NewPage serves html at / on a free port of 127.0.0.1.
func NewPage(html string) (*Page, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Page{url: "http://" + ln.Addr().String() + "/", toPage: make(chan []byte, 256),
		fromPage: make(chan []byte, 256), closed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(html))
	})
	mux.HandleFunc("GET /harness.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write([]byte(harnessJS))
	})
	mux.HandleFunc("POST /msg", func(w http.ResponseWriter, r *http.Request) {
		var raw json.RawMessage
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&raw); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case p.fromPage <- raw:
		case <-p.closed:
		}
	})
	mux.HandleFunc("GET /poll", func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case m := <-p.toPage:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(m)
		case <-t.C:
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
		case <-p.closed:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

// URL returns the page's address.
func (p *Page) URL() string { return p.url }

// Send queues v (as JSON) for the page's recvFromTest.
func (p *Page) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	select {
	case p.toPage <- b:
		return nil
	case <-p.closed:
		return net.ErrClosed
	}
}

// Recv decodes the page's next sendToTest message into v.
func (p *Page) Recv(ctx context.Context, v any) error {
	select {
	case m := <-p.fromPage:
		return json.Unmarshal(m, v)
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closed:
		return net.ErrClosed
	}
}

// Close stops the server and waits for it. It is idempotent.
func (p *Page) Close() error {
	var err error
	p.once.Do(func() {
		close(p.closed)
		err = p.srv.Close()
		p.wg.Wait()
	})
	return err
}
