package dockerimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewRecipeRejects(t *testing.T) {
	bin := writeTemp(t, "bin", "x")
	tests := []struct {
		name       string
		files      map[string]string
		entrypoint []string
		want       string
	}{
		{"no entrypoint", map[string]string{"/x": bin}, nil, "no entrypoint"},
		{"relative path", map[string]string{"x": bin}, []string{"/x"}, "not a clean absolute"},
		{"unclean path", map[string]string{"/a/../x": bin}, []string{"/x"}, "not a clean absolute"},
		{"root", map[string]string{"/": bin}, []string{"/x"}, "not a clean absolute"},
		{"no host file", map[string]string{"/x": ""}, []string{"/x"}, "no host file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newRecipe(tt.files, tt.entrypoint)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestWriteContext(t *testing.T) {
	r, err := newRecipe(map[string]string{
		"/usr/bin/b": writeTemp(t, "b", "bee"),
		"/a":         writeTemp(t, "a", "ay"),
	}, []string{"/usr/bin/b", "serve"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.writeContext(&buf); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		mode    int64
		content string
	}
	got := map[string]entry{}
	var order []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = entry{h.Mode, string(b)}
		order = append(order, h.Name)
	}
	want := map[string]entry{
		"Dockerfile":       {0o644, "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/usr/bin/b\",\"serve\"]\n"},
		"rootfs/":          {0o755, ""},
		"rootfs/a":         {0o755, "ay"},
		"rootfs/usr/":      {0o755, ""},
		"rootfs/usr/bin/":  {0o755, ""},
		"rootfs/usr/bin/b": {0o755, "bee"},
	}
	if len(got) != len(want) {
		t.Errorf("entries %v, want %d", order, len(want))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %+v, want %+v", name, got[name], w)
		}
	}
}

func TestSourceDigest(t *testing.T) {
	a, b := writeTemp(t, "a", "one"), writeTemp(t, "b", "two")
	same := writeTemp(t, "same", "one")
	base, err := SourceDigest(map[string]string{"/x": a}, []string{"/x"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(base, "sha256:") || len(base) != len("sha256:")+64 {
		t.Fatalf("digest %q is not sha256:<hex>", base)
	}
	tests := []struct {
		name       string
		files      map[string]string
		entrypoint []string
		equal      bool
	}{
		{"same content elsewhere", map[string]string{"/x": same}, []string{"/x"}, true},
		{"other content", map[string]string{"/x": b}, []string{"/x"}, false},
		{"other image path", map[string]string{"/y": a}, []string{"/x"}, false},
		{"other entrypoint", map[string]string{"/x": a}, []string{"/x", "pause"}, false},
		{"one more file", map[string]string{"/x": a, "/y": b}, []string{"/x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := SourceDigest(tt.files, tt.entrypoint)
			if err != nil {
				t.Fatal(err)
			}
			if (d == base) != tt.equal {
				t.Errorf("digest %s vs %s: equal=%v, want %v", d, base, d == base, tt.equal)
			}
		})
	}
	if _, err := SourceDigest(map[string]string{"/x": filepath.Join(t.TempDir(), "missing")}, []string{"/x"}); err == nil {
		t.Error("digest of a missing file: no error")
	}
}
