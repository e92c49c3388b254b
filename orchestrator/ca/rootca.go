package ca

// This file owns the root CA: creating it, parsing it from PEM, its digest
// (the part of a join token that pins it) and signing node certificates.
// What a node certificate says about its holder is read back in identity.go.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/shoal/shoal/api"
)

const (
	// RootCAValidity is how long a new root CA certificate is valid.
	RootCAValidity = 20 * 365 * 24 * time.Hour
	// DefaultNodeCertExpiry is a node certificate's validity when the cluster
	// spec does not set CAConfig.node_cert_expiry.
	DefaultNodeCertExpiry = 90 * 24 * time.Hour
	// certBackdate is how far before its issuance a certificate's NotBefore
	// lies, so that peers with slightly slow clocks accept it.
	certBackdate = time.Minute
	// digestLen is the length of a root CA digest: sha256 (256 bits) in base36.
	digestLen = 50
)

// ErrInvalidCSR is wrapped by errors about a certificate signing request that
// cannot be signed: not PEM, not a CSR, bad signature, unsupported key.
var ErrInvalidCSR = errors.New("invalid certificate signing request")

// RootCA is the cluster's root certificate authority. Key is nil when the
// RootCA can only verify (on workers, and when joining).
type RootCA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer
}

// NewRootCA creates a self-signed ECDSA P-256 root CA for the cluster.
func NewRootCA(clusterID string) (*RootCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate root CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "shoal-root-ca", Organization: []string{clusterID}},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(RootCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create root CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new root CA certificate: %w", err)
	}
	return &RootCA{Cert: cert, CertPEM: encodePEM(pemCertificate, der), Key: key}, nil
}

// ParseRootCA parses a root CA certificate and, unless keyPEM is nil, its
// private key. It refuses a certificate that is not a self-signed CA and a
// key that does not belong to the certificate.
func ParseRootCA(certPEM, keyPEM []byte) (*RootCA, error) {
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("root CA certificate: %w", err)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("root CA certificate: not a CA certificate (needs basic constraints CA:true and key usage cert sign)")
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("root CA certificate: not self-signed: %w", err)
	}
	r := &RootCA{Cert: cert, CertPEM: encodePEM(pemCertificate, cert.Raw)}
	if keyPEM == nil {
		return r, nil
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("root CA key: %w", err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, errors.New("root CA key: does not belong to the root CA certificate")
	}
	r.Key = key
	return r, nil
}

// KeyPEM returns the root CA's private key as PKCS#8 PEM.
func (r *RootCA) KeyPEM() ([]byte, error) {
	if r.Key == nil {
		return nil, errors.New("root CA has no private key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(r.Key)
	if err != nil {
		return nil, fmt.Errorf("marshal root CA key: %w", err)
	}
	return encodePEM(pemPrivateKey, der), nil
}

// Digest returns the root CA's digest as a join token carries it: sha256 of
// the certificate's DER, in lower-case base36, zero-padded to 50 characters.
func (r *RootCA) Digest() string {
	sum := sha256.Sum256(r.Cert.Raw)
	return api.Base36(sum[:], digestLen)
}

// Pool returns a certificate pool holding only the root CA.
func (r *RootCA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(r.Cert)
	return pool
}

// IssueNodeCertificate signs csrPEM into a node certificate for nodeID with
// the given role in the given cluster, valid for expiry (never past the root
// CA's own expiry). The CSR's signature is checked; its subject and
// extensions are ignored. Errors about the CSR wrap ErrInvalidCSR.
func (r *RootCA) IssueNodeCertificate(csrPEM []byte, nodeID string, role api.NodeRole, clusterID string, expiry time.Duration) (certPEM []byte, notAfter time.Time, err error) {
	if r.Key == nil {
		return nil, time.Time{}, errors.New("issue node certificate: root CA has no private key")
	}
	if nodeID == "" || clusterID == "" {
		return nil, time.Time{}, errors.New("issue node certificate: node ID and cluster ID must not be empty")
	}
	if expiry <= 0 {
		return nil, time.Time{}, fmt.Errorf("issue node certificate: expiry %s is not positive", expiry)
	}
	ou, err := roleOU(role)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("issue node certificate: %w", err)
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, time.Time{}, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	notAfter = now.Add(expiry)
	if notAfter.After(r.Cert.NotAfter) {
		notAfter = r.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         nodeID,
			OrganizationalUnit: []string{ou},
			Organization:       []string{clusterID},
		},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{WorkerName},
	}
	if role == api.NodeRole_NODE_ROLE_MANAGER {
		// Only managers serve: only their certificates may.
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames = []string{ServerName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.Cert, csr.PublicKey, r.Key)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sign node certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("parse new node certificate: %w", err)
	}
	return encodePEM(pemCertificate, der), cert.NotAfter, nil
}

// verifyNodeCertificate checks that cert chains to the root CA for a TLS
// client or server use (a manager's certificate allows both, a worker's only
// client authentication).
func (r *RootCA) verifyNodeCertificate(cert *x509.Certificate) error {
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:     r.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("node certificate does not verify against the cluster's root CA: %w", err)
	}
	return nil
}

// parseCSR decodes a PEM certificate signing request, checks its signature
// and that its key is one a node may use.
func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	der, err := decodePEM(csrPEM, pemCSR)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCSR, err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature does not verify: %w", ErrInvalidCSR, err)
	}
	if err := checkNodeKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCSR, err)
	}
	return csr, nil
}

// randomSerial returns a random positive 128-bit certificate serial number.
func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}
