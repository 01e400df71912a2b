// Command pgshard is the one binary: `pgshard serve` runs the proxy, `pgshard check` validates a config.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"

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
  pgshard version
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
	path := fs.String("config", "config.yaml", "config file")
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
	path := fs.String("config", "config.yaml", "config file")
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "%s\n", err)
		return 1
	}
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
