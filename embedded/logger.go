package embedded

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore forwards etcd's zap records to a slog.Handler.
type slogCore struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c slogCore) With(fs []zapcore.Field) zapcore.Core {
	return slogCore{h: c.h, attrs: append(append([]slog.Attr(nil), c.attrs...), attrs(fs)...)}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	r.AddAttrs(c.attrs...)
	r.AddAttrs(attrs(fs)...)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	return c.h.Handle(context.Background(), r)
}

func (slogCore) Sync() error { return nil }

func attrs(fs []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fs {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		out = append(out, slog.Any(k, v))
	}
	return out
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// Attribute keys of this package's log records, kept stable for queries.
const (
	KeyName       = "name"        // this member's name
	KeyMember     = "member"      // the ID of the member a record is about, in hex as etcdctl prints it
	KeyMemberName = "member_name" // its name, when it is not this member
	KeyMembers    = "members"     // how many members the cluster has
	KeyPeer       = "peer_url"    // a member's peer URL
	KeyRevision   = "revision"    // a store revision
	KeySize       = "db_size"     // database file size, bytes
	KeyInUse      = "db_in_use"   // bytes of the file holding data
	KeySizeBefore = "size_before" // file size before a defragmentation
	KeySizeAfter  = "size_after"  // file size after it
	KeyQuota      = "quota"       // backend quota, bytes
	KeyTook       = "took"        // how long an operation took
	KeyPath       = "path"        // a snapshot file
	KeyReason     = "reason"      // why a defragmentation or recovery ran
	KeyErr        = "err"         // what went wrong
)

var discardLog = slog.New(slog.DiscardHandler)

// zapHandler is a slog.Handler writing to a zap core, for WithZapLogger.
type zapHandler struct {
	core   zapcore.Core
	prefix string // open groups, "a.b."
}

func (h zapHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.core.Enabled(zapLevel(l))
}

func (h zapHandler) Handle(_ context.Context, r slog.Record) error {
	ent := zapcore.Entry{Level: zapLevel(r.Level), Time: r.Time, Message: r.Message}
	ce := h.core.Check(ent, nil)
	if ce == nil {
		return nil
	}
	fs := make([]zapcore.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fs = h.appendField(fs, h.prefix, a)
		return true
	})
	ce.Write(fs...)
	return nil
}

func (h zapHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var fs []zapcore.Field
	for _, a := range as {
		fs = h.appendField(fs, h.prefix, a)
	}
	return zapHandler{core: h.core.With(fs), prefix: h.prefix}
}

func (h zapHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return zapHandler{core: h.core, prefix: h.prefix + name + "."}
}

func (h zapHandler) appendField(fs []zapcore.Field, prefix string, a slog.Attr) []zapcore.Field {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			fs = h.appendField(fs, prefix+a.Key+".", g)
		}
		return fs
	}
	if a.Key == "" {
		return fs
	}
	key := prefix + a.Key
	switch v.Kind() {
	case slog.KindString:
		return append(fs, zap.String(key, v.String()))
	case slog.KindInt64:
		return append(fs, zap.Int64(key, v.Int64()))
	case slog.KindUint64:
		return append(fs, zap.Uint64(key, v.Uint64()))
	case slog.KindFloat64:
		return append(fs, zap.Float64(key, v.Float64()))
	case slog.KindBool:
		return append(fs, zap.Bool(key, v.Bool()))
	case slog.KindDuration:
		return append(fs, zap.Duration(key, v.Duration()))
	case slog.KindTime:
		return append(fs, zap.Time(key, v.Time()))
	default:
		if err, ok := v.Any().(error); ok {
			return append(fs, zap.NamedError(key, err))
		}
		return append(fs, zap.Any(key, v.Any()))
	}
}

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		return zapcore.InfoLevel
	default:
		return zapcore.DebugLevel
	}
}
