package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestNewRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		flag string
	}{
		{"bad level", Config{Level: "loud"}, "--log-level"},
		{"fatal level not offered", Config{Level: "fatal"}, "--log-level"},
		{"bad format", Config{Format: "xml"}, "--log-format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, &bytes.Buffer{})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("New() error = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("error %q does not name %s", err, tt.flag)
			}
			if verr := tt.cfg.Validate(); verr == nil {
				t.Fatal("Validate() accepted what New rejects")
			}
		})
	}
}

func TestJSONOutputAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(Config{Level: "info", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Error("boom", zap.String("volume_id", "v1"))
	_ = log.Sync()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1 (debug must be filtered): %q", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if rec["msg"] != "boom" || rec["volume_id"] != "v1" || rec["level"] != "error" {
		t.Fatalf("unexpected record %v", rec)
	}
	if _, ok := rec["stacktrace"]; ok {
		t.Fatal("stack trace attached at info level")
	}
}

func TestDebugAddsStacktraceToErrors(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(Config{Level: "debug", Format: "console"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Error("boom")
	_ = log.Sync()
	if !strings.Contains(buf.String(), "ERROR") || !strings.Contains(buf.String(), "logging_test.go") {
		t.Fatalf("console output lacks level or stack: %q", buf.String())
	}
}
