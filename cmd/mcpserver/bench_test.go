package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/proctest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

// The benchmarks measure what an editor sees: a tool call over stdio to
// the real binary, sequentially, from request to answer. Figures, not
// timed tests; docs/benchmarks.md records them.

// benchServer starts the binary on a fresh database of that backend, signed
// in (pro plan) with 20 todos stored.
func benchServer(b *testing.B, backend string) (*mcp.ClientSession, *exec.Cmd) {
	b.Helper()
	bin := benchBinary(b)
	db := newDatabase(b, backend)
	u, tok := db.userWithToken(b, "bench@example.com")
	ctx := context.Background()
	if _, err := db.st.SetPlan(ctx, u.ID, store.PlanState{Plan: "pro", Source: "local"}); err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		if _, err := db.st.CreateTodo(ctx, u.ID, store.NoLimit, store.NewTodo{Title: fmt.Sprintf("Todo %d", i), Tags: []string{"bench"}, Priority: store.PriorityLow}); err != nil {
			b.Fatal(err)
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = proctest.CleanEnv("DATABASE_URL="+db.url, "PUBLIC_URL=http://127.0.0.1:1", "TODO_MCP_DATA_DIR="+b.TempDir(),
		"TODO_MCP_CONFIG_DIR="+b.TempDir(), mcptools.EnvToken+"="+tok, "LOG_LEVEL=warn")
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs, cmd
}

// benchBinary is the mcpserver to measure: this tree's, or the one
// MCPSERVER_BENCH_BIN names (to compare two builds on the same machine
// state, alternating runs).
func benchBinary(b *testing.B) string {
	if bin := os.Getenv("MCPSERVER_BENCH_BIN"); bin != "" {
		return bin
	}
	return proctest.Build(b, "cmd/mcpserver")
}

// measure calls fn b.N times and reports the latency percentiles, the
// sequential call rate and the server's CPU time per call (user + system,
// from /proc: less sensitive to other load on the machine than latency).
func measure(b *testing.B, server *exec.Cmd, fn func() error) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	cpu0 := cpuTime(server.Process.Pid)
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	cpu := cpuTime(server.Process.Pid) - cpu0
	b.StopTimer()
	reportPercentiles(b, lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "server-cpu-µs/call")
}

// cpuTime is the CPU time a process has used (Linux; 0 elsewhere).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// rssMB reads a process's resident set size from /proc (Linux), in MB.
func rssMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func toolCall(cs *mcp.ClientSession, name string, args map[string]any) func() error {
	return func() error {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
		if err == nil && res.IsError {
			err = fmt.Errorf("%s: %s", name, text(res))
		}
		return err
	}
}

func BenchmarkToolCallOverStdio(b *testing.B) {
	for _, backend := range storetest.Backends {
		cs, cmd := benchServer(b, backend)
		b.Run("list_todos_20/"+backend, func(b *testing.B) {
			measure(b, cmd, toolCall(cs, "list_todos", map[string]any{"limit": 20, "tag": "bench"}))
			b.ReportMetric(rssMB(cmd.Process.Pid, "VmRSS"), "rss-MB")
		})
		b.Run("create_todo/"+backend, func(b *testing.B) {
			measure(b, cmd, toolCall(cs, "create_todo", map[string]any{"title": "Benchmarked", "priority": "high", "tags": []string{"b"}, "due": "2030-01-02"}))
			b.ReportMetric(rssMB(cmd.Process.Pid, "VmRSS"), "rss-MB")
			b.ReportMetric(rssMB(cmd.Process.Pid, "VmHWM"), "peak-rss-MB")
		})
	}
}

// BenchmarkPingOverStdio is the floor under every tool call: a ping
// round trip through the SDK's client and server and the pipes, with no
// tool and no database.
func BenchmarkPingOverStdio(b *testing.B) {
	cs, cmd := benchServer(b, store.BackendSQLite)
	measure(b, cmd, func() error { return cs.Ping(context.Background(), nil) })
}

// BenchmarkStartToToolsList times a process start to the answer of
// tools/list: spawn, initialize, list.
func BenchmarkStartToToolsList(b *testing.B) {
	bin := benchBinary(b)
	db := newDatabase(b, store.BackendSQLite)
	env := proctest.CleanEnv("DATABASE_URL="+db.url, "PUBLIC_URL=http://127.0.0.1:1", "TODO_MCP_DATA_DIR="+b.TempDir(),
		"TODO_MCP_CONFIG_DIR="+b.TempDir(), "LOG_LEVEL=warn")
	var lat []time.Duration
	var rss float64
	for b.Loop() {
		cmd := exec.Command(bin)
		cmd.Env = env
		t0 := time.Now()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cs.ListTools(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		rss = max(rss, rssMB(cmd.Process.Pid, "VmRSS"))
		b.StopTimer()
		cs.Close()
		b.StartTimer()
	}
	reportPercentiles(b, lat)
	b.ReportMetric(rss, "rss-MB")
}
