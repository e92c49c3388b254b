package api

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code from the .proto files,
// as `make proto` does, and compares it with what is committed.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make tools, and Debian's protobuf-compiler): %v", tool, err)
		}
	}
	protos, err := filepath.Glob("*.proto")
	if err != nil || len(protos) == 0 {
		t.Fatalf("no .proto files: %v", err)
	}
	out := t.TempDir()
	args := []string{"-I", "..", "-I", "/usr/include",
		"--go_out=" + out, "--go_opt=paths=source_relative",
		"--go-grpc_out=" + out, "--go-grpc_opt=paths=source_relative"}
	for _, p := range protos {
		args = append(args, filepath.Join("api", p))
	}
	cmd := exec.Command("protoc", args...)
	cmd.Dir = "."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	generated, err := filepath.Glob(filepath.Join(out, "api", "*.go"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("protoc generated nothing: %v", err)
	}
	for _, g := range generated {
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Base(g))
		if err != nil {
			t.Fatalf("%s is generated but not committed: %v", filepath.Base(g), err)
		}
		if !bytes.Equal(want, have) {
			t.Errorf("%s differs from what `make proto` generates; run make proto", filepath.Base(g))
		}
	}
}
