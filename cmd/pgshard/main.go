// Command pgshard is the one binary: `pgshard serve` runs the proxy, `pgshard check` validates a config.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pgshard/pgshard/codec"
	"github.com/pgshard/pgshard/config"
	"github.com/pgshard/pgshard/loop"
)

const usage = `pgshard: a Postgres sharding proxy and connection pooler

usage:
  pgshard serve --config config.yaml [--log-level info]   run the proxy (SIGHUP: reload the config file)
  pgshard check --config config.yaml                      validate a config file and exit
  pgshard hash --shards N --type T VALUE...               the shard of key values (Postgres hash partitioning)
  pgshard hash --config config.yaml --table T VALUE...    the shard of key values of a configured table
  pgshard reshard --config config.yaml --database DB --to new-shards.yaml [--workers 4]
                                                          move a live database to new shards (--abort undoes)
  pgshard sequences --config config.yaml --database DB [--check]
                                                          interleave the sequences of sharded tables over the shards
  pgshard ping --config config.yaml [--timeout 3s]        exit 0 when the proxy answers on its listen address
  pgshard version

The config file defaults to $PGSHARD_CONFIG, else config.yaml.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "hash":
		return hash(args[1:], stdout, stderr)
	case "reshard":
		return reshardCmd(args[1:], stderr)
	case "sequences":
		return sequencesCmd(args[1:], stdout, stderr)
	case "ping":
		return ping(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "pgshard", loop.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "pgshard: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig(), "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := config.Load(*path); err != nil {
		fmt.Fprintf(stderr, "%s\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig(), "config file")
	level := fs.String("log-level", "info", "debug | info | warn | error")
	pprofAddr := fs.String("pprof", "", "serve Go's /debug/pprof on this address (host:port), for profiling")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "pgshard: bad --log-level %q\n", *level)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s\n", err)
		return 1
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv})
	if cfg.LogFormat == config.LogJSON {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv})
	}
	log := slog.New(handler)
	if *pprofAddr != "" {
		go func() {
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				log.Error("pprof", "err", err)
			}
		}()
	}
	e, err := loop.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "pgshard: %s\n", err)
		return 1
	}
	e.SetConfigFile(*path)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			log.Info("reloading the config file", "signal", "SIGHUP", "file", *path)
			_, _ = e.Reload() // logs what it did, or why it changed nothing
		}
	}()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-sigs
		log.Info("shutting down", "signal", sig.String(), "timeout", cfg.ShutdownTimeout)
		go func() {
			<-sigs
			log.Warn("second signal: stopping now")
			os.Exit(1)
		}()
		if err := e.Shutdown(cfg.ShutdownTimeout); err != nil {
			log.Error("shutdown", "err", err)
		}
	}()
	if err := e.Run(); err != nil {
		log.Error("serve", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// defaultConfig is the config file when --config is not given: $PGSHARD_CONFIG (a container's environment
// names its mounted file), else config.yaml.
func defaultConfig() string {
	if p := os.Getenv("PGSHARD_CONFIG"); p != "" {
		return p
	}
	return "config.yaml"
}

// ping checks that a running pgshard answers on its listen address, as a container's health check does: it
// sends a GSSENCRequest, which a running pgshard answers with one byte ('N') without a login, a TLS handshake or a
// server connection, and closes.
func ping(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfig(), "config file")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s\n", err)
		return 1
	}
	network, addr := "tcp", cfg.Listen
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "pgshard ping: %v\n", err)
		return 1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(*timeout))
	answer := make([]byte, 1)
	if _, err := c.Write(codec.AppendRequestCode(nil, codec.GSSENCRequestCode)); err == nil {
		_, err = io.ReadFull(c, answer)
	}
	if err != nil || answer[0] != 'N' {
		fmt.Fprintf(stderr, "pgshard ping: no answer from %s: %v\n", addr, err)
		return 1
	}
	fmt.Fprintf(stdout, "pgshard at %s: ok\n", addr)
	return 0
}
