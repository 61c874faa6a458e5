// Package migrations embeds the SQL schema of todo-mcp, one directory per
// dialect, applied by the store with goose.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql. Both directories describe the
// same schema and must keep the same version numbers.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
