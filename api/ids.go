package api

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// idLen is the width of an object ID: 128 bits in base36.
const idLen = 25

// NewID returns a random identifier for an object (node, cluster, service,
// task): 128 random bits in lower-case base36, zero-padded to 25 characters.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	s := new(big.Int).SetBytes(b).Text(36)
	if len(s) < idLen {
		s = strings.Repeat("0", idLen-len(s)) + s
	}
	return s
}
