package config

import (
	"regexp"
	"strings"
	"testing"
)

// isKindeKey replaces a regular expression; it must accept exactly what
// the expression did.
func TestIsKindeKeyIsTheOldPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$`)
	cases := []string{"", "pro", "todos", "max_todos", "pro-yearly", "a:b.c-d_e", "_pro", "-pro", ".x", ":x", "9lives",
		"todos limit!", "team;plus", "pro\n", "pró", "a b", strings.Repeat("a", 100), strings.Repeat("a", 101),
		"a" + strings.Repeat("_", 99), "a" + strings.Repeat("_", 100), "\x00", "x\x00"}
	for _, c := range cases {
		if got, want := isKindeKey(c), pattern.MatchString(c); got != want {
			t.Errorf("isKindeKey(%q) = %v, the pattern says %v", c, got, want)
		}
	}
}
