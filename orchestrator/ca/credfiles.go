package ca

// This file owns a node's credentials on disk: ca.crt, node.crt and node.key
// in a 0700 directory, each written 0600 through a temporary file and a
// rename. A certificate and its key change together: the new pair is first
// staged complete as node.key.next and node.crt.next, then renamed into
// place key first. A crash in between leaves node.crt.next behind, and
// LoadSecurityConfig finishes the swap, so a node never loads a certificate
// with another certificate's key.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	caCertFile   = "ca.crt"
	nodeCertFile = "node.crt"
	nodeKeyFile  = "node.key"
	stagedSuffix = ".next"
)

// LoadSecurityConfig reads a node's credentials from dir, as Save wrote
// them. When the node has not joined yet the error wraps fs.ErrNotExist.
func LoadSecurityConfig(dir string) (*SecurityConfig, error) {
	if err := finishStagedUpdate(dir); err != nil {
		return nil, fmt.Errorf("load security config from %s: %w", dir, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, fmt.Errorf("load security config: %w", err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, nodeCertFile))
	if err != nil {
		return nil, fmt.Errorf("load security config: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, nodeKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load security config: %w", err)
	}
	root, err := ParseRootCA(caPEM, nil)
	if err != nil {
		return nil, fmt.Errorf("load security config from %s: %w", dir, err)
	}
	sc, err := NewSecurityConfig(root, certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load security config from %s: %w", dir, err)
	}
	sc.dir = dir
	return sc, nil
}

// writeCredentialFiles writes the whole credential set into dir.
func writeCredentialFiles(dir string, caPEM, certPEM, keyPEM []byte) error {
	if err := ensureCredentialDir(dir); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, caCertFile, caPEM); err != nil {
		return err
	}
	return writeNodeFiles(dir, certPEM, keyPEM)
}

// writeNodeFiles replaces node.crt and node.key as a pair (see the file
// comment).
func writeNodeFiles(dir string, certPEM, keyPEM []byte) error {
	if err := ensureCredentialDir(dir); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, nodeKeyFile+stagedSuffix, keyPEM); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, nodeCertFile+stagedSuffix, certPEM); err != nil {
		return err
	}
	return commitStagedFiles(dir)
}

// commitStagedFiles renames the staged key, if still there, and then the
// staged certificate into place.
func commitStagedFiles(dir string) error {
	for _, name := range []string{nodeKeyFile, nodeCertFile} {
		staged := filepath.Join(dir, name+stagedSuffix)
		err := os.Rename(staged, filepath.Join(dir, name))
		if err != nil && !(name == nodeKeyFile && errors.Is(err, fs.ErrNotExist)) {
			return fmt.Errorf("install %s: %w", name, err)
		}
	}
	return syncDir(dir)
}

// finishStagedUpdate completes an update that a crash interrupted. A staged
// certificate is installed if it matches the staged key (or, when the key
// was already renamed, the installed key); anything else staged is an
// incomplete write and is removed.
func finishStagedUpdate(dir string) error {
	stagedCert := filepath.Join(dir, nodeCertFile+stagedSuffix)
	stagedKey := filepath.Join(dir, nodeKeyFile+stagedSuffix)
	certPEM, err := os.ReadFile(stagedCert)
	if errors.Is(err, fs.ErrNotExist) {
		return removeIfExists(stagedKey)
	}
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(stagedKey)
	if errors.Is(err, fs.ErrNotExist) {
		keyPEM, err = os.ReadFile(filepath.Join(dir, nodeKeyFile))
	}
	if err != nil {
		return err
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		if err := removeIfExists(stagedKey); err != nil {
			return err
		}
		return removeIfExists(stagedCert)
	}
	return commitStagedFiles(dir)
}

// ensureCredentialDir creates dir if needed and makes it private.
func ensureCredentialDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create credential directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("make credential directory private: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to dir/name with mode 0600 so that a reader
// sees either the old content or all of the new.
func writeFileAtomic(dir, name string, data []byte) (err error) {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return syncDir(dir)
}

// syncDir makes renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
