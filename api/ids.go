package api

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// idLen is the width of an object ID: 128 bits in base36.
const idLen = 25

// NewID returns a random identifier for an object (node, cluster, service,
// task, network): 128 random bits in lower-case base36, zero-padded to 25
// characters.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return Base36(b, idLen)
}

// Base36 renders b as a big-endian number in lower-case base36, zero-padded
// on the left to width: the encoding of IDs, CA digests and join-token
// secrets.
func Base36(b []byte, width int) string {
	s := new(big.Int).SetBytes(b).Text(36)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}
