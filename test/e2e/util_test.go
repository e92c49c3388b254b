package e2e

import "strings"

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func countLines(s, sub string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			n++
		}
	}
	return n
}
