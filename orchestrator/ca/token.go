package ca

// This file owns the join token format: SHOAL-1-<digest>-<secret>, where the
// digest pins the cluster's root CA (see RootCA.Digest) and the secret is
// what the CA server compares to admit a node.

import (
	"errors"
	"fmt"
	"strings"
)

const (
	tokenPrefix  = "SHOAL"
	tokenVersion = "1"
	// secretLen is the length of a token's secret: 128 bits in base36.
	secretLen = 25
)

// ErrInvalidToken is wrapped by every error about a malformed join token.
var ErrInvalidToken = errors.New("invalid join token")

// JoinToken is a parsed join token.
type JoinToken struct {
	// Digest is the root CA's digest (RootCA.Digest).
	Digest string
	// Secret is 128 random bits in base36.
	Secret string
}

// String returns the token in its SHOAL-1-<digest>-<secret> form.
func (t JoinToken) String() string {
	return tokenPrefix + "-" + tokenVersion + "-" + t.Digest + "-" + t.Secret
}

// GenerateJoinToken returns a new join token for the cluster of r with a
// fresh random secret.
func GenerateJoinToken(r *RootCA) (string, error) {
	secret, err := randomBase36(16, secretLen)
	if err != nil {
		return "", fmt.Errorf("generate join token secret: %w", err)
	}
	return JoinToken{Digest: r.Digest(), Secret: secret}.String(), nil
}

// ParseJoinToken parses a join token. Errors wrap ErrInvalidToken and name
// the part that is wrong.
func ParseJoinToken(s string) (JoinToken, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return JoinToken{}, fmt.Errorf("%w: token is empty", ErrInvalidToken)
	}
	parts := strings.Split(s, "-")
	if len(parts) != 4 {
		return JoinToken{}, fmt.Errorf("%w: want 4 parts SHOAL-1-<digest>-<secret> separated by '-', got %d", ErrInvalidToken, len(parts))
	}
	if parts[0] != tokenPrefix {
		return JoinToken{}, fmt.Errorf("%w: prefix is %q, want %q", ErrInvalidToken, parts[0], tokenPrefix)
	}
	if parts[1] != tokenVersion {
		return JoinToken{}, fmt.Errorf("%w: version is %q, want %q", ErrInvalidToken, parts[1], tokenVersion)
	}
	t := JoinToken{Digest: parts[2], Secret: parts[3]}
	if err := checkTokenPart("CA digest", t.Digest, digestLen); err != nil {
		return JoinToken{}, err
	}
	if err := checkTokenPart("secret", t.Secret, secretLen); err != nil {
		return JoinToken{}, err
	}
	return t, nil
}

// checkTokenPart checks that a token part is lower-case base36 of the given
// length.
func checkTokenPart(name, value string, length int) error {
	if len(value) != length {
		return fmt.Errorf("%w: %s has %d characters, want %d", ErrInvalidToken, name, len(value), length)
	}
	if !isBase36(value) {
		return fmt.Errorf("%w: %s has characters other than 0-9 and a-z", ErrInvalidToken, name)
	}
	return nil
}
