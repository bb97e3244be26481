// Command ferretdb runs FerretDB v1 (the MongoDB wire protocol over SQLite)
// through its embeddable package, for Feira's local and test stacks.
//
// The embeddable package has no telemetry reporter and disables telemetry
// explicitly; the machine the stack runs on may have no internet at all.
//
// Its logger keeps the attributes of Logger.With as they are until a record
// is written: FerretDB calls With(args) for every SQL statement it runs (the
// whole document of each insert among them) before a Debug call, and
// slog's TextHandler formats them right away, level or not (a tenth of its
// CPU per insert, measured by bench/notifications.sh).
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dir := flag.String("dir", "var/ferretdb", "directory of the SQLite databases")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	// SQLite's synchronous pragma under WAL: "normal" syncs the WAL at
	// checkpoints, not at every commit; a commit survives a crash of the
	// process, not of the machine -- as a MongoDB write with the default
	// write concern (journal synced every 100 ms), and a third of the
	// CPU per insert less than "full", SQLite's default
	sync := flag.String("synchronous", "normal", "SQLite synchronous pragma: normal, full or extra")
	flag.Parse()

	// a small heap collected 4 times less often: a quarter of its CPU per
	// insert went to the collector at Go's default (GOGC=100); the
	// environment's GOGC, when set, stays in force
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}

	switch *sync {
	case "normal", "full", "extra":
	default:
		log.Fatalf("-synchronous %q: normal, full or extra", *sync)
	}

	if err := os.MkdirAll(*dir, 0o750); err != nil {
		log.Fatal(err)
	}

	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		log.Fatal(err)
	}

	logger := slog.New(&lazyHandler{inner: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})})

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/?_pragma=synchronous(" + *sync + ")",
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	logger.Info("ferretdb listening", "addr", *listen, "dir", *dir)

	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

// lazyHandler is inner with the attributes of With kept unformatted: they
// are added to a record only when one is handled (written).
type lazyHandler struct {
	inner slog.Handler
	attrs []slog.Attr
}

func (h *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	if len(h.attrs) == 0 {
		return h.inner.Handle(ctx, r)
	}

	// the attributes of With first, as slog puts them
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})

	return h.inner.Handle(ctx, out)
}

func (h *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}

	all := make([]slog.Attr, 0, len(h.attrs)+len(attrs))
	all = append(append(all, h.attrs...), attrs...)

	return &lazyHandler{inner: h.inner, attrs: all}
}

// WithGroup applies the attributes so far to inner: they stay outside the group.
func (h *lazyHandler) WithGroup(name string) slog.Handler {
	inner := h.inner
	if len(h.attrs) > 0 {
		inner = inner.WithAttrs(h.attrs)
	}

	return &lazyHandler{inner: inner.WithGroup(name)}
}
