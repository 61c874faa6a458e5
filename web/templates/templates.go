// Package templates embeds the authserver's HTML templates: layout.html and
// partials.html shared by every page, and one file per page.
package templates

import "embed"

// FS holds every *.html file of this directory.
//
//go:embed *.html
var FS embed.FS
