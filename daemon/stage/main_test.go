package stage

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Main's exit codes before any configuration is read: -h is a request (0,
// usage printed), an unknown flag a mistake (2).
func TestMainFlagExitCodes(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  int
		usage bool
	}{
		{"help", []string{"-h"}, 0, true},
		{"long help", []string{"--help"}, 0, true},
		{"unknown flag", []string{"-nope"}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ran := false
			got := Main("crowsnest-test", nil, tt.args, &stderr, func(context.Context, *Env) error {
				ran = true
				return nil
			})
			if got != tt.want {
				t.Errorf("exit code %d, want %d (stderr %q)", got, tt.want, stderr.String())
			}
			if ran {
				t.Error("run was called")
			}
			if tt.usage && !strings.Contains(stderr.String(), "-config") {
				t.Errorf("stderr lacks the usage: %q", stderr.String())
			}
		})
	}
}
