package webterminal

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reflow-go/reflow/internal/leak"
)

// TestGeneratedCodeFresh regenerates the protobuf/gRPC code into a temporary
// directory with gen.sh (what go generate runs) and fails if the committed
// files differ. Under CI (CI set) missing tools fail the test; elsewhere the
// test skips and says why.
func TestGeneratedCodeFresh(t *testing.T) {
	leak.Check(t)
	gobin := filepath.Join(goEnv(t, "GOPATH"), "bin")
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err == nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(gobin, tool)); err == nil {
			continue
		}
		msg := tool + " not found: install protoc with `apt-get install protobuf-compiler` and the plugins with " +
			"`go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12 google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2`"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "gen.sh", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
	for _, name := range []string{"webterminal.pb.go", "webterminal_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(dir, "webterminalpb", name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("webterminalpb", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("webterminalpb/%s is stale: run `go generate ./call/webterminal/...` and commit the result", name)
		}
	}
}

func goEnv(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", key, err)
	}
	return strings.TrimSpace(string(out))
}
