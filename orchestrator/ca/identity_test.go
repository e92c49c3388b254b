package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"
)

// certWithSubject makes a self-signed certificate with the given subject,
// for identities no CA of ours would issue.
func certWithSubject(t *testing.T, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestIdentityFromCertificate(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	managerCert, _ := issueTestCert(t, root, "node-m", manager, "cluster-a", time.Hour)
	workerCert, _ := issueTestCert(t, root, "node-w", worker, "cluster-a", time.Hour)
	tests := []struct {
		name    string
		cert    *x509.Certificate
		want    Identity
		wantErr string
	}{
		{name: "manager", cert: mustParseCert(t, managerCert), want: Identity{NodeID: "node-m", ClusterID: "cluster-a", Role: manager}},
		{name: "worker", cert: mustParseCert(t, workerCert), want: Identity{NodeID: "node-w", ClusterID: "cluster-a", Role: worker}},
		{name: "nil", wantErr: "no certificate"},
		{name: "no CN", cert: certWithSubject(t, pkix.Name{Organization: []string{"c"}, OrganizationalUnit: []string{WorkerOU}}), wantErr: "no node ID"},
		{name: "no O", cert: certWithSubject(t, pkix.Name{CommonName: "n", OrganizationalUnit: []string{WorkerOU}}), wantErr: "exactly one cluster ID"},
		{name: "two O", cert: certWithSubject(t, pkix.Name{CommonName: "n", Organization: []string{"a", "b"}, OrganizationalUnit: []string{WorkerOU}}), wantErr: "exactly one cluster ID"},
		{name: "two OU", cert: certWithSubject(t, pkix.Name{CommonName: "n", Organization: []string{"c"}, OrganizationalUnit: []string{WorkerOU, ManagerOU}}), wantErr: "exactly one role"},
		{name: "unknown OU", cert: certWithSubject(t, pkix.Name{CommonName: "n", Organization: []string{"c"}, OrganizationalUnit: []string{"swarm-manager"}}), wantErr: `unknown role "swarm-manager"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IdentityFromCertificate(tt.cert)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("IdentityFromCertificate: %v", err)
			}
			if got != tt.want {
				t.Fatalf("identity = %+v, want %+v", got, tt.want)
			}
		})
	}
}
