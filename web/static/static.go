// Package static embeds the authserver's stylesheet and images.
package static

import "embed"

// FS holds every file served under /static/.
//
//go:embed *.css *.svg
var FS embed.FS
