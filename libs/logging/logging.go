// Package logging builds the zap loggers of the driver, the sentinel and the
// kubeharness command, so that the driver and the sentinel accept the same
// --log-level and --log-format values and emit the same structured fields.
package logging

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Format names an output encoding.
type Format string

const (
	// FormatJSON writes one JSON object per line; the default for clusters.
	FormatJSON Format = "json"
	// FormatConsole writes human-readable lines, for terminals.
	FormatConsole Format = "console"
)

// ErrInvalid marks a logging setting that cannot be parsed.
var ErrInvalid = errors.New("invalid logging setting")

// Config holds the user-facing logging settings.
type Config struct {
	// Level is one of debug, info, warn, error.
	Level string
	// Format is json or console.
	Format string
}

// Validate reports a setting that New would reject, naming the flag.
func (c Config) Validate() error {
	if _, err := ParseLevel(c.Level); err != nil {
		return err
	}
	_, err := ParseFormat(c.Format)
	return err
}

// ParseLevel turns a level name into a zap level. The empty string means info.
func ParseLevel(s string) (zapcore.Level, error) {
	if s == "" {
		return zapcore.InfoLevel, nil
	}
	var l zapcore.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(s))); err != nil {
		return 0, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", ErrInvalid, s)
	}
	switch l {
	case zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel:
		return l, nil
	default:
		return 0, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", ErrInvalid, s)
	}
}

// ParseFormat checks a format name. The empty string means json.
func ParseFormat(s string) (Format, error) {
	switch Format(strings.ToLower(s)) {
	case "", FormatJSON:
		return FormatJSON, nil
	case FormatConsole:
		return FormatConsole, nil
	default:
		return "", fmt.Errorf("%w: --log-format %q: want json or console", ErrInvalid, s)
	}
}

// New builds a logger writing to w. Stack traces are attached to error logs
// only at debug level, so an operator sees one line per handled error.
func New(cfg Config, w io.Writer) (*zap.Logger, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	format, err := ParseFormat(cfg.Format)
	if err != nil {
		return nil, err
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == FormatConsole {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	opts := []zap.Option{zap.AddCaller()}
	if level == zapcore.DebugLevel {
		opts = append(opts, zap.AddStacktrace(zapcore.ErrorLevel))
	}
	return zap.New(core, opts...), nil
}
