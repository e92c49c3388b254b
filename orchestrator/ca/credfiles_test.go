package ca

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSecurityConfigSaveLoad(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	sc := newTestSecurityConfig(t, root, "node-1", worker, "cluster-a", time.Hour)
	dir := filepath.Join(t.TempDir(), "certificates")
	if err := sc.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode = %v (err %v), want 0700", info.Mode().Perm(), err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	if got := strings.Join(names, " "); got != "ca.crt node.crt node.key" {
		t.Fatalf("directory holds %q, want ca.crt node.crt node.key and nothing else", got)
	}

	loaded, err := LoadSecurityConfig(dir)
	if err != nil {
		t.Fatalf("LoadSecurityConfig: %v", err)
	}
	if loaded.Identity() != sc.Identity() {
		t.Errorf("loaded identity %+v, want %+v", loaded.Identity(), sc.Identity())
	}
	if !loaded.NotAfter().Equal(sc.NotAfter()) {
		t.Errorf("loaded NotAfter %s, want %s", loaded.NotAfter(), sc.NotAfter())
	}
	if loaded.RootCA().Digest() != root.Digest() {
		t.Errorf("loaded root digest differs")
	}
	if loaded.RootCA().Key != nil {
		t.Errorf("a node's security config must not hold the root CA key")
	}
}

func TestLoadSecurityConfigNotJoined(t *testing.T) {
	_, err := LoadSecurityConfig(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping fs.ErrNotExist", err)
	}
}

func TestSecurityConfigUpdate(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	sc := newTestSecurityConfig(t, root, "node-1", worker, "cluster-a", time.Hour)
	dir := t.TempDir()
	if err := sc.Save(dir); err != nil {
		t.Fatal(err)
	}
	serverConfig := sc.ServerTLSConfig()
	clientConfig := sc.ClientTLSConfig()
	changed := sc.Changed()

	certPEM, keyPEM := issueTestCert(t, root, "node-1", manager, "cluster-a", 2*time.Hour)
	if err := sc.Update(certPEM, keyPEM); err != nil {
		t.Fatalf("Update: %v", err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed channel not closed by Update")
	}
	if sc.Identity().Role != manager {
		t.Errorf("role after update = %v, want manager", sc.Identity().Role)
	}
	served, err := serverConfig.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	presented, err := clientConfig.GetClientCertificate(&tls.CertificateRequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	for what, c := range map[string]*tls.Certificate{"server": served, "client": presented} {
		if !c.Leaf.NotAfter.Equal(sc.NotAfter()) {
			t.Errorf("%s TLS config made before Update uses the old certificate", what)
		}
	}
	loaded, err := LoadSecurityConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.CertificatePEM(), certPEM) {
		t.Errorf("Update did not reach the disk")
	}
}

func TestSecurityConfigUpdateRefuses(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	otherRoot := newTestRoot(t, "cluster-a")
	sc := newTestSecurityConfig(t, root, "node-1", worker, "cluster-a", time.Hour)
	dir := t.TempDir()
	if err := sc.Save(dir); err != nil {
		t.Fatal(err)
	}
	before := sc.CertificatePEM()
	otherNodeCert, otherNodeKey := issueTestCert(t, root, "node-2", worker, "cluster-a", time.Hour)
	otherClusterCert, otherClusterKey := issueTestCert(t, root, "node-1", worker, "cluster-b", time.Hour)
	foreignCert, foreignKey := issueTestCert(t, otherRoot, "node-1", worker, "cluster-a", time.Hour)
	goodCert, _ := issueTestCert(t, root, "node-1", worker, "cluster-a", time.Hour)
	_, strayKey := issueTestCert(t, root, "node-1", worker, "cluster-a", time.Hour)
	tests := []struct {
		name            string
		certPEM, keyPEM []byte
		wantErr         string
	}{
		{"another node", otherNodeCert, otherNodeKey, "for node node-2"},
		{"another cluster", otherClusterCert, otherClusterKey, "of cluster cluster-b"},
		{"another root CA", foreignCert, foreignKey, "does not verify against the cluster's root CA"},
		{"key of another certificate", goodCert, strayKey, "private key does not match public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sc.Update(tt.certPEM, tt.keyPEM)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if !bytes.Equal(sc.CertificatePEM(), before) {
				t.Fatal("a refused update changed the certificate in memory")
			}
			onDisk, err := os.ReadFile(filepath.Join(dir, nodeCertFile))
			if err != nil || !bytes.Equal(onDisk, before) {
				t.Fatalf("a refused update changed the certificate on disk (err %v)", err)
			}
		})
	}
}

// TestLoadFinishesInterruptedUpdate puts the directory in each state a crash
// during writeNodeFiles can leave, and checks that the node loads a matching
// pair and that nothing staged is left behind.
func TestLoadFinishesInterruptedUpdate(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	oldCert, oldKey := issueTestCert(t, root, "node-1", worker, "cluster-a", time.Hour)
	newCert, newKey := issueTestCert(t, root, "node-1", worker, "cluster-a", 2*time.Hour)
	files := func(crt, key, crtNext, keyNext []byte) map[string][]byte {
		return map[string][]byte{"node.crt": crt, "node.key": key, "node.crt.next": crtNext, "node.key.next": keyNext}
	}
	tests := []struct {
		name     string
		files    map[string][]byte
		wantCert []byte
	}{
		{"no update", files(oldCert, oldKey, nil, nil), oldCert},
		{"crash while staging the key", files(oldCert, oldKey, nil, newKey[:20]), oldCert},
		{"crash after staging both", files(oldCert, oldKey, newCert, newKey), newCert},
		{"crash after installing the key", files(oldCert, newKey, newCert, nil), newCert},
		{"stray staged certificate", files(oldCert, oldKey, newCert, nil), oldCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.files["ca.crt"] = root.CertPEM
			for name, data := range tt.files {
				if data == nil {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			sc, err := LoadSecurityConfig(dir)
			if err != nil {
				t.Fatalf("LoadSecurityConfig: %v", err)
			}
			if !bytes.Equal(sc.CertificatePEM(), tt.wantCert) {
				t.Errorf("loaded the wrong certificate")
			}
			for _, staged := range []string{"node.crt.next", "node.key.next"} {
				if _, err := os.Stat(filepath.Join(dir, staged)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s left behind (stat err %v)", staged, err)
				}
			}
		})
	}
}
