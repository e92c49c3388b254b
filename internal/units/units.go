// Package units parses the sizes operators type on shoal's command lines,
// so that every command reads "4GB" as the same number of bytes. It
// imports nothing of the project.
package units

import (
	"errors"
	"math/big"
	"regexp"
	"strings"
)

// sizePattern matches docker's memory sizes: a decimal number, an optional
// space and a unit of b, k, m, g, t or p, the latter five optionally
// followed by b or ib.
var sizePattern = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?(?:([kmgtp])(?:i?b)?|b)?$`)

// ParseBytes reads a size such as 512m, 4GB, 1.5GiB or 1000000 as a number
// of bytes, in any case. As in docker, every unit is a power of 1024,
// whether written k, kb or kib: 4GB is 4×2³⁰ bytes. A fraction of a byte
// is dropped. Zero is a size; callers that need a positive one say so.
func ParseBytes(s string) (int64, error) {
	m := sizePattern.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return 0, errors.New("want a size like 512m, 1g or 1.5GiB (units b, k, m, g, t, p: powers of 1024)")
	}
	n, _ := new(big.Rat).SetString(m[1])
	if m[2] != "" {
		shift := uint(strings.Index("kmgtp", m[2])+1) * 10
		n.Mul(n, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), shift)))
	}
	bytes := new(big.Int).Quo(n.Num(), n.Denom()) // whole bytes, rounded down
	if !bytes.IsInt64() {
		return 0, errors.New("too large")
	}
	return bytes.Int64(), nil
}
