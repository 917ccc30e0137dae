// etcdbench: the etcd side of `raftfs bench`, for measuring raftfs and etcd
// side by side with the same load and the same figures.
//
// A closed loop: N clients (goroutines), each sending one request, waiting
// for its answer and sending the next, over M gRPC connections (one
// clientv3.Client each; client i uses connection i mod M). Requests in the
// warm-up are not counted; then it measures for a duration and prints the
// throughput and the latency quantiles of the requests that succeeded,
// from a log-linear histogram like raftfs bench's (each quantile at most
// 1.6% above the true one). With --json it prints one object with the
// field names of `raftfs bench --json`, so that one parser reads both.
//
// Built offline from Debian's packages by ../build.sh (GOPATH mode).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"
)

const usage = `usage: etcdbench [OPTIONS]

A closed-loop load generator for etcd (v3 API, gRPC): each client sends a
request, waits for the answer, sends the next. Prints ops/s and latency
quantiles of the requests of the measured window (after the warm-up), like
raftfs bench, with the same --json fields.

options:
  --endpoints HOST:PORT[,...]  etcd client endpoints (default 127.0.0.1:2379);
                               each connection spreads its requests over them
                               (clientv3's balancer): give the leader alone to
                               talk to the leader
  --op put|get|sget            put: writes; get: linearizable reads; sget:
                               serializable reads (default put)
  --clients N                  concurrent clients, 1..1024 (default 1)
  --connections M              gRPC connections the clients share, 1..N
                               (default N: one each); client i uses connection
                               i mod M
  --value-size BYTES           size of each value (random bytes), e.g. 256 or 4K
                               (default 256)
  --keys N                     distinct keys, 1..1000000 (default 1000)
  --key-size BYTES             length of each key: 'k' and the key's number,
                               zero-padded; at least 1 + the digits of N-1, at
                               most 255 (default 7: k000042)
  --key-order walk|uniform     walk: each client goes through the keys in order
                               from its own place (default); uniform: each
                               request draws its key uniformly at random
  --warmup SECONDS             run this long first without counting (default 0)
  --duration SECONDS           how long to measure (default 10)
  --requests N                 stop after N measured requests in all (or at
                               --duration)
  --timeout SECONDS            give up on one request after this long
                               (default 5)
  --json                       print the result as one JSON object

Before get and sget it writes every key once (with 256 writers at least).
Failures are counted by gRPC status code (in errors_by_errno with --json;
EPROTO: a read without the value written).

Exit status: 0 if every measured request succeeded, 1 if any failed (the
result is still printed), 2 on a usage error.
`

// ---- latency histogram: 64 buckets per power of two ----

const (
	histSub     = 64
	histBuckets = 59 * histSub
)

type histogram struct {
	counts   [histBuckets]uint64
	n, max   uint64
	sum      float64
	min      uint64
	nonEmpty bool
}

func bucketOf(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 7 // keeps the top 7 bits: 64..127
	return shift*histSub + int(v>>uint(shift))
}

func bucketHigh(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := uint(i/histSub - 1)
	m := uint64(i%histSub + histSub)
	high := ((m + 1) << shift) - 1
	if high < m<<shift {
		return math.MaxUint64
	}
	return high
}

func (h *histogram) add(v uint64) {
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	if !h.nonEmpty || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.nonEmpty = true
}

func (h *histogram) merge(o *histogram) {
	for i := range o.counts {
		h.counts[i] += o.counts[i]
	}
	h.n += o.n
	h.sum += o.sum
	if o.nonEmpty && (!h.nonEmpty || o.min < h.min) {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.nonEmpty = h.nonEmpty || o.nonEmpty
}

// quantile: the upper end of the bucket holding the sample of rank
// ceil(q*n), never above the largest value; 0 when empty.
func (h *histogram) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i]
		if seen >= rank {
			if v := bucketHigh(i); v < h.max {
				return v
			}
			return h.max
		}
	}
	return h.max
}

func (h *histogram) mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// ---- the load ----

type config struct {
	endpoints   []string
	op          string
	clients     int
	connections int
	valueSize   int
	keys        int
	keySize     int
	uniform     bool
	warmup      float64
	duration    float64
	requests    uint64
	timeout     time.Duration
	json        bool
}

type worker struct {
	id         int
	hist       histogram
	errors     map[string]uint64
	firstError string
	rng        uint64
}

func (w *worker) random() uint64 { // xorshift64*
	w.rng ^= w.rng >> 12
	w.rng ^= w.rng << 25
	w.rng ^= w.rng >> 27
	return w.rng * 0x2545f4914f6cdd1d
}

func keyName(cfg *config, k int) string {
	return fmt.Sprintf("k%0*d", cfg.keySize-1, k)
}

// errName names a failure the way errors_by_errno counts it.
func errName(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "DeadlineExceeded"
	}
	if errors.Is(err, context.Canceled) {
		return "Canceled"
	}
	if s, ok := status.FromError(err); ok {
		return s.Code().String()
	}
	return "other"
}

// one sends one request and waits for it: "" or the name of its failure.
func one(cfg *config, cli *clientv3.Client, op string, key string, value string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	switch op {
	case "put":
		if _, err := cli.Put(ctx, key, value); err != nil {
			return errName(err), err
		}
	default:
		var opts []clientv3.OpOption
		if op == "sget" {
			opts = append(opts, clientv3.WithSerializable())
		}
		resp, err := cli.Get(ctx, key, opts...)
		if err != nil {
			return errName(err), err
		}
		if len(resp.Kvs) != 1 || len(resp.Kvs[0].Value) != cfg.valueSize {
			return "EPROTO", errors.New("a read answered without the value written")
		}
	}
	return "", nil
}

func (w *worker) fail(name string, key string, err error) {
	w.errors[name]++
	if w.firstError == "" {
		w.firstError = key + ": " + err.Error()
	}
}

func usageError(msg string) {
	fmt.Fprintf(os.Stderr, "etcdbench: %s\nRun 'etcdbench --help' for usage.\n", msg)
	os.Exit(2)
}

func parseSize(s string) (int, bool) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > (64<<20)/mult {
		return 0, false
	}
	return v * mult, true
}

func parseArgs() *config {
	fs := flag.NewFlagSet("etcdbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	endpoints := fs.String("endpoints", "127.0.0.1:2379", "")
	op := fs.String("op", "put", "")
	clients := fs.String("clients", "1", "")
	connections := fs.String("connections", "", "")
	valueSize := fs.String("value-size", "256", "")
	keys := fs.String("keys", "1000", "")
	keySize := fs.String("key-size", "", "")
	keyOrder := fs.String("key-order", "walk", "")
	warmup := fs.String("warmup", "0", "")
	duration := fs.String("duration", "10", "")
	requests := fs.String("requests", "", "")
	timeout := fs.String("timeout", "5", "")
	asJSON := fs.Bool("json", false, "")
	help := fs.Bool("help", false, "")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			fmt.Print(usage)
			os.Exit(0)
		}
		usageError("bad option: " + err.Error())
	}
	if *help {
		fmt.Print(usage)
		os.Exit(0)
	}
	if fs.NArg() > 0 {
		usageError("unexpected argument")
	}
	cfg := &config{op: *op, json: *asJSON}
	for _, e := range strings.Split(*endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.endpoints = append(cfg.endpoints, e)
		}
	}
	if len(cfg.endpoints) == 0 {
		usageError("bad --endpoints: no endpoints given")
	}
	if cfg.op != "put" && cfg.op != "get" && cfg.op != "sget" {
		usageError("bad --op (put, get or sget)")
	}
	intIn := func(s string, lo, hi int) (int, bool) {
		v, err := strconv.Atoi(s)
		return v, err == nil && v >= lo && v <= hi
	}
	secs := func(s string, lo, hi float64) (float64, bool) {
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) && v >= lo && v <= hi
	}
	var ok bool
	if cfg.clients, ok = intIn(*clients, 1, 1024); !ok {
		usageError("bad --clients (1 to 1024)")
	}
	cfg.connections = cfg.clients
	if *connections != "" {
		if cfg.connections, ok = intIn(*connections, 1, 1024); !ok {
			usageError("bad --connections (1 to --clients)")
		}
		if cfg.connections > cfg.clients {
			usageError(fmt.Sprintf("bad --connections: %d is more than the %d client(s)",
				cfg.connections, cfg.clients))
		}
	}
	if cfg.valueSize, ok = parseSize(*valueSize); !ok {
		usageError("bad --value-size (bytes, e.g. 256 or 4K)")
	}
	if cfg.keys, ok = intIn(*keys, 1, 1000000); !ok {
		usageError("bad --keys (1 to 1000000)")
	}
	need := 1 + len(strconv.Itoa(cfg.keys-1))
	cfg.keySize = 7
	if *keySize != "" {
		if cfg.keySize, ok = intIn(*keySize, 2, 255); !ok {
			usageError("bad --key-size (bytes of a key, 2 to 255)")
		}
	}
	if cfg.keySize < need {
		usageError(fmt.Sprintf("bad --key-size: %d keys need keys of at least %d bytes",
			cfg.keys, need))
	}
	switch *keyOrder {
	case "walk":
	case "uniform":
		cfg.uniform = true
	default:
		usageError("bad --key-order (walk or uniform)")
	}
	if cfg.warmup, ok = secs(*warmup, 0, 86400); !ok {
		usageError("bad --warmup (seconds, 0 to 86400)")
	}
	if cfg.duration, ok = secs(*duration, 0.1, 86400); !ok {
		usageError("bad --duration (seconds, 0.1 to 86400)")
	}
	if *requests != "" {
		v, err := strconv.ParseUint(*requests, 10, 64)
		if err != nil || v == 0 {
			usageError("bad --requests (a count, at least 1)")
		}
		cfg.requests = v
	}
	t, ok := secs(*timeout, 0.01, 3600)
	if !ok {
		usageError("bad --timeout (seconds, up to 3600)")
	}
	cfg.timeout = time.Duration(t * float64(time.Second))
	return cfg
}

func main() {
	cfg := parseArgs()
	buf := make([]byte, cfg.valueSize)
	if _, err := rand.Read(buf); err != nil {
		fmt.Fprintf(os.Stderr, "etcdbench: no random bytes: %v\n", err)
		os.Exit(1)
	}
	value := string(buf)

	// clientv3 logs every retried request: failures are counted instead
	quiet := zap.NewProductionConfig()
	quiet.Level = zap.NewAtomicLevelAt(zap.FatalLevel)
	conns := make([]*clientv3.Client, cfg.connections)
	for i := range conns {
		cli, err := clientv3.New(clientv3.Config{Endpoints: cfg.endpoints,
			DialTimeout: cfg.timeout, LogConfig: &quiet})
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcdbench: cannot connect to %s: %v\n",
				strings.Join(cfg.endpoints, ","), err)
			os.Exit(1)
		}
		defer cli.Close()
		conns[i] = cli
		// Connect now (a read of a key nobody writes), not in the first request.
		ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
		_, err = cli.Get(ctx, "etcdbench-connect", clientv3.WithSerializable())
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcdbench: cannot reach %s: %v\n",
				strings.Join(cfg.endpoints, ","), err)
			os.Exit(1)
		}
	}

	var seed [8]byte
	rand.Read(seed[:])
	ws := make([]*worker, cfg.clients)
	for i := range ws {
		ws[i] = &worker{id: i, errors: map[string]uint64{}}
		ws[i].rng = (binaryUint64(seed[:]) + uint64(i+1)*0x9e3779b97f4a7c15) | 1
	}

	if cfg.op != "put" {
		// 256 writers at least, to be quick also for few clients
		n := cfg.clients
		if n < 256 {
			n = 256
		}
		if cfg.keys < n {
			n = cfg.keys
		}
		if !cfg.json {
			fmt.Fprintf(os.Stderr, "etcdbench: writing %d keys of %d bytes to read\n",
				cfg.keys, cfg.valueSize)
		}
		writers := make([]*worker, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			writers[i] = &worker{id: i, errors: map[string]uint64{}}
			wg.Add(1)
			go func(w *worker) {
				defer wg.Done()
				cli := conns[w.id%cfg.connections]
				from, to := w.id*cfg.keys/n, (w.id+1)*cfg.keys/n
				for k := from; k < to; k++ {
					key := keyName(cfg, k)
					if name, err := one(cfg, cli, "put", key, value); err != nil {
						w.fail(name, key, err)
					}
				}
			}(writers[i])
		}
		wg.Wait()
		for _, w := range writers {
			if w.firstError != "" {
				fmt.Fprintf(os.Stderr, "etcdbench: cannot write the keys to read: %s\n",
					w.firstError)
				os.Exit(1)
			}
		}
	}

	var issued uint64
	start := time.Now()
	measureFrom := start.Add(time.Duration(cfg.warmup * float64(time.Second)))
	deadline := measureFrom.Add(time.Duration(cfg.duration * float64(time.Second)))
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			cli := conns[w.id%cfg.connections]
			k := w.id * cfg.keys / cfg.clients
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				measured := !t0.Before(measureFrom)
				if measured && cfg.requests > 0 && atomic.AddUint64(&issued, 1) > cfg.requests {
					return
				}
				key := k
				if cfg.uniform {
					key = int(w.random() % uint64(cfg.keys))
				}
				name, err := one(cfg, cli, cfg.op, keyName(cfg, key), value)
				took := time.Since(t0)
				if measured {
					if err != nil {
						w.fail(name, keyName(cfg, key), err)
					} else {
						w.hist.add(uint64(took.Nanoseconds()))
					}
				}
				if k++; k == cfg.keys {
					k = 0
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(measureFrom).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}

	var all histogram
	errs := map[string]uint64{}
	var nErrors uint64
	first := ""
	for _, w := range ws {
		all.merge(&w.hist)
		for name, n := range w.errors {
			errs[name] += n
			nErrors += n
		}
		if first == "" {
			first = w.firstError
		}
	}
	report(cfg, &all, errs, nErrors, elapsed)
	if nErrors > 0 {
		fmt.Fprintf(os.Stderr, "etcdbench: %d requests failed; the first: %s\n", nErrors, first)
		os.Exit(1)
	}
}

func binaryUint64(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func report(cfg *config, h *histogram, errs map[string]uint64, nErrors uint64, elapsed float64) {
	ms := func(ns uint64) float64 { return float64(ns) / 1e6 }
	rate := 0.0
	if elapsed > 0 {
		rate = float64(h.n) / elapsed
	}
	qs := []float64{0.5, 0.9, 0.99, 0.999}
	names := make([]string, 0, len(errs))
	for name := range errs {
		names = append(names, name)
	}
	sort.Strings(names)
	order := "walk"
	if cfg.uniform {
		order = "uniform"
	}
	if cfg.json {
		var b strings.Builder
		fmt.Fprintf(&b, `{"op": "%s", "clients": %d, "connections": %d, "value_size": %d, `+
			`"keys": %d, "key_size": %d, "key_order": "%s", "warmup_s": %.3f, `+
			`"duration_s": %.3f, "ops": %d, "errors": %d, "ops_per_s": %.1f, "latency_ms": {`,
			cfg.op, cfg.clients, cfg.connections, cfg.valueSize, cfg.keys, cfg.keySize, order,
			cfg.warmup, elapsed, h.n, nErrors, rate)
		for i, key := range []string{"p50", "p90", "p99", "p999"} {
			fmt.Fprintf(&b, `"%s": %.3f, `, key, ms(h.quantile(qs[i])))
		}
		fmt.Fprintf(&b, `"max": %.3f, "mean": %.3f}, "errors_by_errno": {`, ms(h.max),
			h.mean()/1e6)
		for i, name := range names {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, `"%s": %d`, name, errs[name])
		}
		b.WriteString("}}\n")
		fmt.Print(b.String())
		return
	}
	plural := func(n int, word string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, word)
		}
		return fmt.Sprintf("%d %ss", n, word)
	}
	fmt.Printf("op %s, %s", cfg.op, plural(cfg.clients, "client"))
	if cfg.connections != cfg.clients {
		fmt.Printf(" over %s", plural(cfg.connections, "connection"))
	}
	walked := "walked"
	if cfg.uniform {
		walked = "uniform"
	}
	fmt.Printf(", values of %d bytes on %d keys (keys of %d bytes, %s), %.2f s", cfg.valueSize,
		cfg.keys, cfg.keySize, walked, elapsed)
	if cfg.warmup > 0 {
		fmt.Printf(" after %.2f s of warm-up", cfg.warmup)
	}
	fmt.Println()
	fmt.Printf("%d ops, %d errors, %.1f ops/s\n", h.n, nErrors, rate)
	fmt.Printf("latency (ms):")
	for i, name := range []string{"p50", "p90", "p99", "p99.9"} {
		fmt.Printf(" %s %.3f", name, ms(h.quantile(qs[i])))
	}
	fmt.Printf(" max %.3f mean %.3f\n", ms(h.max), h.mean()/1e6)
	for _, name := range names {
		fmt.Printf("errors: %d x %s\n", errs[name], name)
	}
}
