package ca

import (
	"errors"
	"strings"
	"testing"
)

func TestGenerateJoinTokenParses(t *testing.T) {
	root := newTestRoot(t, "cluster-a")
	first, err := GenerateJoinToken(root)
	if err != nil {
		t.Fatalf("GenerateJoinToken: %v", err)
	}
	second, err := GenerateJoinToken(root)
	if err != nil {
		t.Fatalf("GenerateJoinToken: %v", err)
	}
	if first == second {
		t.Fatalf("two tokens are equal: %s", first)
	}
	tok, err := ParseJoinToken(first)
	if err != nil {
		t.Fatalf("ParseJoinToken(%q): %v", first, err)
	}
	if tok.Digest != root.Digest() {
		t.Errorf("digest = %s, want the root CA's %s", tok.Digest, root.Digest())
	}
	if len(tok.Secret) != secretLen {
		t.Errorf("secret %q has %d characters, want %d", tok.Secret, len(tok.Secret), secretLen)
	}
	if tok.String() != first {
		t.Errorf("String() = %s, want %s", tok.String(), first)
	}
	if !strings.HasPrefix(first, "SHOAL-1-") {
		t.Errorf("token %s does not start with SHOAL-1-", first)
	}
}

func TestParseJoinToken(t *testing.T) {
	digest := strings.Repeat("0", 10) + strings.Repeat("a9", 20)
	secret := "0123456789abcdefghijklmno"
	tests := []struct {
		name    string
		token   string
		wantErr string // "" for a good token
	}{
		{"good", "SHOAL-1-" + digest + "-" + secret, ""},
		{"surrounding space", "  SHOAL-1-" + digest + "-" + secret + "\n", ""},
		{"empty", "", "token is empty"},
		{"wrong prefix", "SWMTKN-1-" + digest + "-" + secret, `prefix is "SWMTKN"`},
		{"lower-case prefix", "shoal-1-" + digest + "-" + secret, `prefix is "shoal"`},
		{"wrong version", "SHOAL-2-" + digest + "-" + secret, `version is "2"`},
		{"too few parts", "SHOAL-1-" + digest, "want 4 parts"},
		{"too many parts", "SHOAL-1-" + digest + "-" + secret + "-x", "got 5"},
		{"short digest", "SHOAL-1-" + digest[1:] + "-" + secret, "CA digest has 49 characters, want 50"},
		{"upper-case digest", "SHOAL-1-" + strings.ToUpper(digest) + "-" + secret, "CA digest has characters other than"},
		{"digest with punctuation", "SHOAL-1-" + digest[:49] + "_" + "-" + secret, "CA digest has characters other than"},
		{"long secret", "SHOAL-1-" + digest + "-" + secret + "p", "secret has 26 characters, want 25"},
		{"empty secret", "SHOAL-1-" + digest + "-", "secret has 0 characters"},
		{"secret not base36", "SHOAL-1-" + digest + "-" + secret[:24] + "+", "secret has characters other than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseJoinToken(tt.token)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseJoinToken: %v", err)
				}
				if tok.Digest != digest || tok.Secret != secret {
					t.Fatalf("parsed %+v, want digest %s secret %s", tok, digest, secret)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want one wrapping ErrInvalidToken", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
