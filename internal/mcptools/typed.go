package mcptools

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// typedTool registers a typed handler (mcp.ToolHandlerFor) the way
// mcp.AddTool does: the same input and output schemas (inferred from In and
// Out unless the definition sets them), arguments validated against the
// input schema before the handler runs, with the same error texts, and the
// result as structured content plus the same JSON as text.
//
// It exists because mcp.AddTool (go-sdk v1.8.0) costs about half of a
// list_todos call (docs/benchmarks.md): it re-marshals the arguments after
// validating them, and marshals the result, unmarshals it to validate it
// against the output schema, then marshals it again. Here the arguments are
// unmarshalled straight into In once they are valid, and the result is
// marshalled once, its bytes used for both the structured and the text
// content. The output schema is inferred from the same Go type the result
// is marshalled from, so checking every result against it only catches a
// drift between the two: the tests of this package turn that check on
// (validateOutput) and run every tool.
//
// Start-up does no schema work: inferring the 22 schemas and marshalling
// them took 7-10 ms of a cold process before it could answer initialize.
// What tools/list shows comes from precomputedSchemas (schemas_gen.go, the
// JSON the inference gives, which TestPrecomputedSchemas holds to it); the
// schemas that validate arguments are inferred on the tool's first call.
type typedTool[In, Out any] struct {
	def     *mcp.Tool // what tools/list shows, schemas as JSON
	handler mcp.ToolHandlerFor[In, Out]
	// inSource and outSource infer the schemas.
	inSource, outSource schemaSource

	// Inferred and resolved on first use.
	resolveOnce      sync.Once
	resolveErr       error
	input, output    *jsonschema.Resolved
	inputHasDefaults bool
}

// validateOutput makes every tool check its result against its output
// schema, as mcp.AddTool does. The tests turn it on.
var validateOutput = false

// usePrecomputed serves the precomputed schemas; the tests turn it off, so
// that what they see (the golden snapshot) is inferred from the code.
var usePrecomputed = true

// A schemaSource infers a schema.
type schemaSource func() (*jsonschema.Schema, error)

// newTypedTool fills in the schemas of def (a copy) from In and Out, as
// mcp.AddTool does: def.InputSchema may be nil (inferred from In), a
// schemaSource or a *jsonschema.Schema; def.OutputSchema is inferred from
// Out unless set. Schemas that precomputedSchemas lacks are inferred here.
func newTypedTool[In, Out any](def *mcp.Tool, h mcp.ToolHandlerFor[In, Out]) *typedTool[In, Out] {
	if reflect.TypeFor[Out]().Kind() == reflect.Pointer {
		panic(fmt.Sprintf("mcptools: tool %q: the result type must not be a pointer", def.Name))
	}
	tt := &typedTool[In, Out]{handler: h, inSource: sourceOf[In](def.InputSchema), outSource: sourceOf[Out](def.OutputSchema)}
	d := *def
	if pre, ok := precomputedSchemas[d.Name]; ok && usePrecomputed {
		d.InputSchema, d.OutputSchema = json.RawMessage(pre.input), json.RawMessage(pre.output)
	} else {
		in, out, err := tt.schemasJSON()
		if err != nil {
			panic(fmt.Sprintf("mcptools: tool %q: %v", d.Name, err)) // a programming error, caught by every test
		}
		d.InputSchema, d.OutputSchema = in, out
	}
	tt.def = &d
	return tt
}

// sourceOf infers T's schema, unless given is a schema or a schemaSource.
func sourceOf[T any](given any) schemaSource {
	switch s := given.(type) {
	case nil:
		return func() (*jsonschema.Schema, error) {
			return jsonschema.ForType(reflect.TypeFor[T](), &jsonschema.ForOptions{})
		}
	case schemaSource:
		return s
	case *jsonschema.Schema:
		return func() (*jsonschema.Schema, error) { return s, nil }
	default:
		return func() (*jsonschema.Schema, error) {
			return nil, fmt.Errorf("a %T; want a *jsonschema.Schema", given)
		}
	}
}

// schemasJSON infers the input and output schemas and marshals them as the
// SDK would send them.
func (tt *typedTool[In, Out]) schemasJSON() (in, out json.RawMessage, err error) {
	for _, x := range []struct {
		what   string
		source schemaSource
		into   *json.RawMessage
	}{{"input", tt.inSource, &in}, {"output", tt.outSource, &out}} {
		s, err := x.source()
		if err != nil {
			return nil, nil, fmt.Errorf("%s schema: %w", x.what, err)
		}
		if *x.into, err = marshalSchema(s); err != nil {
			return nil, nil, fmt.Errorf("%s schema: %w", x.what, err)
		}
	}
	return in, out, nil
}

// marshalSchema is the JSON the SDK would send for s: without HTML
// escaping, as its JSON-RPC layer writes.
func marshalSchema(s *jsonschema.Schema) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// resolve infers and prepares the schemas for validation, once.
func (tt *typedTool[In, Out]) resolve() error {
	tt.resolveOnce.Do(func() {
		tt.resolveErr = tt.resolveSchemas()
	})
	return tt.resolveErr
}

func (tt *typedTool[In, Out]) resolveSchemas() error {
	opts := &jsonschema.ResolveOptions{ValidateDefaults: true}
	in, err := tt.inSource()
	if err != nil {
		return fmt.Errorf("input schema: %w", err)
	}
	if tt.input, err = in.Resolve(opts); err != nil {
		return fmt.Errorf("input schema: %w", err)
	}
	out, err := tt.outSource()
	if err != nil {
		return fmt.Errorf("output schema: %w", err)
	}
	if tt.output, err = out.Resolve(opts); err != nil {
		return fmt.Errorf("output schema: %w", err)
	}
	tt.inputHasDefaults = hasDefaults(in)
	return nil
}

// hasDefaults reports whether a schema or one of its properties (at any
// depth) gives a default value, which the arguments then receive.
func hasDefaults(s *jsonschema.Schema) bool {
	if s == nil {
		return false
	}
	if s.Default != nil {
		return true
	}
	for _, p := range s.Properties {
		if hasDefaults(p) {
			return true
		}
	}
	return hasDefaults(s.Items) || hasDefaults(s.AdditionalProperties)
}

// add registers the tool with s.
func (tt *typedTool[In, Out]) add(s *mcp.Server) { s.AddTool(tt.def, tt.call) }

// call is the mcp.ToolHandler.
func (tt *typedTool[In, Out]) call(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if err := tt.resolve(); err != nil {
		return nil, fmt.Errorf("tool %s: %w", tt.def.Name, err)
	}
	in, err := tt.arguments(req.Params.Arguments)
	if err != nil {
		return errorResult(err), nil
	}
	res, out, err := tt.handler(ctx, req, in)
	if err != nil {
		// A JSON-RPC error is a protocol error, any other a tool error: the
		// rule of mcp.AddTool (only an unwrapped *jsonrpc.Error counts).
		if wire, ok := err.(*jsonrpc.Error); ok {
			return nil, wire
		}
		return errorResult(err), nil
	}
	if res == nil {
		res = &mcp.CallToolResult{}
	}
	if res.InputRequests != nil {
		// Content and input requests exclude each other on the wire.
		return res, nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("marshaling output: %w", err)
	}
	if validateOutput {
		if err := validateJSON(b, tt.output); err != nil {
			return nil, fmt.Errorf("validating tool output: %w", err)
		}
	}
	res.StructuredContent = json.RawMessage(b)
	// The same JSON as text, for clients that ignore structured content
	// (the spec's backward-compatible form); a handler's own text stays.
	switch {
	case res.Content == nil:
		res.Content = []mcp.Content{&mcp.TextContent{Text: string(b)}}
	case len(b) == 0 || b[0] != '{':
		res.Content = append(res.Content, &mcp.TextContent{Text: string(b)})
	}
	return res, nil
}

// arguments validates the raw arguments against the input schema and
// decodes them. The error texts are mcp.AddTool's, which tidyToolErrors
// rewords.
func (tt *typedTool[In, Out]) arguments(raw json.RawMessage) (In, error) {
	var in In
	// Validation needs the generic form: an object is a map, whatever In is.
	v := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			return in, fmt.Errorf("validating \"arguments\": unmarshaling arguments: %w", err)
		}
	}
	var generic any = v
	if tt.inputHasDefaults {
		if err := tt.input.ApplyDefaults(&generic); err != nil {
			return in, fmt.Errorf("validating \"arguments\": applying schema defaults:\n%w", err)
		}
	}
	if err := tt.input.Validate(&generic); err != nil {
		return in, fmt.Errorf("validating \"arguments\": %w", err)
	}
	if tt.inputHasDefaults {
		// The defaults are in the map only.
		b, err := json.Marshal(generic)
		if err != nil {
			return in, fmt.Errorf("validating \"arguments\": marshalling with defaults: %w", err)
		}
		raw = b
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &in); err != nil {
			return in, err
		}
	}
	return in, nil
}

// validateJSON checks a result against the output schema, as mcp.AddTool
// does (the JSON, not the Go value, so custom marshalling counts).
func validateJSON(b []byte, rs *jsonschema.Resolved) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("unmarshaling output: %w", err)
	}
	return rs.Validate(&v)
}

// errorResult is a tool error (isError) whose text is err's.
func errorResult(err error) *mcp.CallToolResult {
	var res mcp.CallToolResult
	res.SetError(err)
	return &res
}
