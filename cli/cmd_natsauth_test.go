package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func TestNATSAuth(t *testing.T) {
	dir := t.TempDir()
	ids := filepath.Join(dir, "ids.yaml")
	if err := os.WriteFile(ids, []byte("collectors: [node-1]\nnode_collectors: true\nsinks: [ch]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	seeds := filepath.Join(dir, "seeds")
	conf := filepath.Join(dir, "auth.conf")
	out, errOut, code := execute(t, "", "nats-auth", ids, "--seeds", seeds, "--out", conf)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, name := range []string{"admin", "processor", "collector-node-1", "node-collectors", "sink-ch"} {
		if !strings.Contains(out, name+"\tnkey_file "+filepath.Join(seeds, name+".nk")+"\tinbox_prefix _INBOX_"+name) {
			t.Errorf("summary lacks %s:\n%s", name, out)
		}
		seed, err := os.ReadFile(filepath.Join(seeds, name+".nk"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, strings.TrimSpace(string(seed))) || strings.Contains(errOut, strings.TrimSpace(string(seed))) {
			t.Fatalf("a seed was printed")
		}
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects the output: %v", err)
	}
	if len(opts.Nkeys) != 5 {
		t.Errorf("%d users, want 5", len(opts.Nkeys))
	}

	// A typo in a key is an error, not a silently empty list.
	if err := os.WriteFile(ids, []byte("colectors: [node-1]\nsinks: [ch]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := execute(t, "", "nats-auth", ids, "--seeds", seeds); code == 0 || !strings.Contains(errOut, "colectors") {
		t.Fatalf("typo: exit %d, %q", code, errOut)
	}
}
