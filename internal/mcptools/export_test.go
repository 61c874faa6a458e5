package mcptools

func init() {
	// The tests check every tool result against the tool's output schema,
	// as mcp.AddTool would on every call.
	validateOutput = true
	// What the tests see (the golden snapshot) is inferred from the code;
	// TestPrecomputedSchemas holds the precomputed schemas to the same.
	usePrecomputed = false
}
