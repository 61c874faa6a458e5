package mcptools

// The tests check every tool result against the tool's output schema, as
// mcp.AddTool would on every call.
func init() { validateOutput = true }
