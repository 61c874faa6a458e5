package mcptools

import (
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// openURL asks the client to open a page in the user's browser through
// URL-mode elicitation. It uses the multi-round-trip form (InputRequests
// and RequestState), which the SDK turns into a real elicitation/create on
// sessions older than 2026-07-28: one code path for every protocol
// version. Clients that did not declare URL elicitation are never asked;
// the tool's text always carries the URL as well.
type openURL struct {
	// key names the input request; state ties the retry to this request.
	key, state string
	url        string
	message    string
}

// ask returns the result that carries the request, or nil when the client
// cannot open URLs.
func (o openURL) ask(req *mcp.CallToolRequest) *mcp.CallToolResult {
	caps := req.ClientCapabilities()
	if caps == nil || caps.Elicitation == nil || caps.Elicitation.URL == nil {
		return nil
	}
	return &mcp.CallToolResult{
		InputRequests: mcp.InputRequestMap{o.key: &mcp.ElicitParams{
			Mode:          "url",
			URL:           o.url,
			ElicitationID: o.state,
			Message:       o.message,
		}},
		RequestState: o.state,
	}
}

// answer is the client's reply when this call is the retry of an earlier
// ask with the same key and state, or nil.
func (o openURL) answer(req *mcp.CallToolRequest) *mcp.ElicitResult {
	if req.Params.RequestState != o.state {
		return nil
	}
	res, _ := req.Params.InputResponses[o.key].(*mcp.ElicitResult)
	return res
}

// isRetry reports whether the call answers an earlier input request, with
// any state: such a call is never asked again, so a confused client cannot
// loop.
func isRetry(req *mcp.CallToolRequest) bool {
	return req.Params.RequestState != "" || len(req.Params.InputResponses) > 0
}
