package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal/shoal/api"
)

func TestBase36(t *testing.T) {
	tests := []struct {
		in    []byte
		width int
		want  string
	}{
		{[]byte{0}, 3, "000"},
		{[]byte{35}, 1, "z"},
		{[]byte{36}, 4, "0010"},
		{[]byte{0x01, 0x00}, 0, "74"}, // 256 = 7*36 + 4
		{bytes.Repeat([]byte{0xff}, 32), digestLen, "6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof"},
	}
	for _, tt := range tests {
		if got := api.Base36(tt.in, tt.width); got != tt.want {
			t.Errorf("base36(%x, %d) = %s, want %s", tt.in, tt.width, got, tt.want)
		}
	}
}

func TestRootCADigestIsStable(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	d := root.Digest()
	if len(d) != digestLen || !isBase36(d) {
		t.Fatalf("digest %q is not 50 lower-case base36 characters", d)
	}
	if again := root.Digest(); again != d {
		t.Fatalf("digest changed between calls: %s then %s", d, again)
	}
	// The digest is of the certificate, not of its PEM text.
	reformatted := append([]byte("\n\n"), root.CertPEM...)
	parsed, err := ParseRootCA(reformatted, nil)
	if err != nil {
		t.Fatalf("ParseRootCA: %v", err)
	}
	if parsed.Digest() != d {
		t.Fatalf("digest of the re-parsed root = %s, want %s", parsed.Digest(), d)
	}
	if other := newTestRoot(t, "cluster-a"); other.Digest() == d {
		t.Fatalf("two root CAs have the same digest %s", d)
	}
}

func TestNewRootCA(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	c := root.Cert
	if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("root is not a CA: IsCA=%v key usage=%v", c.IsCA, c.KeyUsage)
	}
	if lifetime := c.NotAfter.Sub(c.NotBefore); lifetime < 19*365*24*time.Hour {
		t.Errorf("root CA lifetime %s, want about 20 years", lifetime)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root CA key is %T, want ECDSA P-256", c.PublicKey)
	}
}

func TestParseRootCA(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	keyPEM, err := root.KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	otherKeyPEM, err := newTestRoot(t, "cluster-b").KeyPEM()
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	nodeCertPEM, _ := issueTestCert(t, root, "node-1", worker, "cluster-a", time.Hour)
	tests := []struct {
		name    string
		certPEM []byte
		keyPEM  []byte
		wantKey bool
		wantErr string
	}{
		{name: "with key", certPEM: root.CertPEM, keyPEM: keyPEM, wantKey: true},
		{name: "verify only", certPEM: root.CertPEM},
		{name: "key of another CA", certPEM: root.CertPEM, keyPEM: otherKeyPEM, wantErr: "does not belong"},
		{name: "node certificate", certPEM: nodeCertPEM, wantErr: "not a CA certificate"},
		{name: "not PEM", certPEM: []byte("hello"), wantErr: "no PEM CERTIFICATE block"},
		{name: "key PEM as certificate", certPEM: keyPEM, wantErr: `PEM block is "PRIVATE KEY"`},
		{name: "garbage key", certPEM: root.CertPEM, keyPEM: []byte("nope"), wantErr: "no PEM private key block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRootCA(tt.certPEM, tt.keyPEM)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRootCA: %v", err)
			}
			if (got.Key != nil) != tt.wantKey {
				t.Fatalf("has key = %v, want %v", got.Key != nil, tt.wantKey)
			}
			if got.Digest() != root.Digest() {
				t.Fatalf("digest = %s, want %s", got.Digest(), root.Digest())
			}
		})
	}
}

func TestIssueNodeCertificate(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	tests := []struct {
		role   api.NodeRole
		wantOU string
		expiry time.Duration
	}{
		{manager, "shoal-manager", 90 * 24 * time.Hour},
		{worker, "shoal-worker", time.Hour},
		{worker, "shoal-worker", 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.wantOU+"/"+tt.expiry.String(), func(t *testing.T) {
			keyPEM, csrPEM, err := GenerateKeyAndCSR()
			if err != nil {
				t.Fatalf("GenerateKeyAndCSR: %v", err)
			}
			before := time.Now().Truncate(time.Second)
			certPEM, notAfter, err := root.IssueNodeCertificate(csrPEM, "node-1", tt.role, "cluster-a", tt.expiry)
			if err != nil {
				t.Fatalf("IssueNodeCertificate: %v", err)
			}
			after := time.Now()
			cert := mustParseCert(t, certPEM)
			if cert.Subject.CommonName != "node-1" {
				t.Errorf("CN = %q, want node-1", cert.Subject.CommonName)
			}
			if !slices.Equal(cert.Subject.OrganizationalUnit, []string{tt.wantOU}) {
				t.Errorf("OU = %q, want [%s]", cert.Subject.OrganizationalUnit, tt.wantOU)
			}
			if !slices.Equal(cert.Subject.Organization, []string{"cluster-a"}) {
				t.Errorf("O = %q, want [cluster-a]", cert.Subject.Organization)
			}
			if !notAfter.Equal(cert.NotAfter) {
				t.Errorf("returned notAfter %s, certificate says %s", notAfter, cert.NotAfter)
			}
			if cert.NotAfter.Before(before.Add(tt.expiry)) || cert.NotAfter.After(after.Add(tt.expiry)) {
				t.Errorf("NotAfter = %s, want between %s and %s", cert.NotAfter, before.Add(tt.expiry), after.Add(tt.expiry))
			}
			if cert.NotBefore.Before(before.Add(-time.Minute-time.Second)) || cert.NotBefore.After(after.Add(-time.Minute)) {
				t.Errorf("NotBefore = %s, want about a minute before %s", cert.NotBefore, before)
			}
			wantEKU, wantDNS := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, WorkerName
			if tt.role == manager {
				wantEKU, wantDNS = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, ServerName
			}
			if !slices.Equal(cert.ExtKeyUsage, wantEKU) {
				t.Errorf("ExtKeyUsage = %v, want %v", cert.ExtKeyUsage, wantEKU)
			}
			if cert.IsCA {
				t.Errorf("node certificate is a CA")
			}
			if !slices.Equal(cert.DNSNames, []string{wantDNS}) {
				t.Errorf("DNS names = %q, want [%s]", cert.DNSNames, wantDNS)
			}
			if err := root.verifyNodeCertificate(cert); err != nil {
				t.Errorf("certificate does not verify: %v", err)
			}
			key, err := parsePrivateKeyPEM(keyPEM)
			if err != nil {
				t.Fatalf("parse key: %v", err)
			}
			if !publicKeysEqual(key.Public(), cert.PublicKey) {
				t.Errorf("certificate is not for the CSR's key")
			}
		})
	}
}

func TestIssueNodeCertificateIgnoresCSRSubject(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{DNSNames: []string{"evil"}}
	tmpl.Subject.CommonName = "someone-else"
	tmpl.Subject.OrganizationalUnit = []string{ManagerOU}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := root.IssueNodeCertificate(encodePEM(pemCSR, der), "node-1", worker, "cluster-a", time.Hour)
	if err != nil {
		t.Fatalf("IssueNodeCertificate: %v", err)
	}
	id, err := IdentityFromCertificate(mustParseCert(t, certPEM))
	if err != nil {
		t.Fatal(err)
	}
	if id != (Identity{NodeID: "node-1", ClusterID: "cluster-a", Role: worker}) {
		t.Fatalf("identity = %+v, want node-1 worker of cluster-a", id)
	}
	if cert := mustParseCert(t, certPEM); !slices.Equal(cert.DNSNames, []string{WorkerName}) {
		t.Fatalf("DNS names = %q, the CSR's must be ignored", cert.DNSNames)
	}
}

func TestIssueNodeCertificateRefuses(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	verifyOnly, err := ParseRootCA(root.CertPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, csrPEM, err := GenerateKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-5] ^= 0xff // inside the signature
	weakKey, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	weakDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, weakKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		root       *RootCA
		csrPEM     []byte
		role       api.NodeRole
		expiry     time.Duration
		wantCSRErr bool
		wantErr    string
	}{
		{"tampered signature", root, encodePEM(pemCSR, tampered), worker, time.Hour, true, "signature"},
		{"not PEM", root, []byte("csr"), worker, time.Hour, true, "no PEM"},
		{"weak key", root, encodePEM(pemCSR, weakDER), worker, time.Hour, true, "P-224 is not supported"},
		{"verify-only root", verifyOnly, csrPEM, worker, time.Hour, false, "no private key"},
		{"zero expiry", root, csrPEM, worker, 0, false, "not positive"},
		{"unknown role", root, csrPEM, api.NodeRole(7), time.Hour, false, "unknown node role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.root.IssueNodeCertificate(tt.csrPEM, "node-1", tt.role, "cluster-a", tt.expiry)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrInvalidCSR) != tt.wantCSRErr {
				t.Fatalf("errors.Is(err, ErrInvalidCSR) = %v, want %v", !tt.wantCSRErr, tt.wantCSRErr)
			}
		})
	}
}

func TestIssueNodeCertificateNotPastRoot(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	_, csrPEM, err := GenerateKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	_, notAfter, err := root.IssueNodeCertificate(csrPEM, "node-1", worker, "cluster-a", 30*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !notAfter.Equal(root.Cert.NotAfter) {
		t.Fatalf("NotAfter = %s, want the root's %s", notAfter, root.Cert.NotAfter)
	}
}
