package authz_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  authz.Config
		want []string // substrings of the error; none means valid
	}{
		{"valid", authz.Config{Collectors: []string{"node-1", "node_2"}, Sinks: []string{"ch"}}, nil},
		{"empty", authz.Config{}, []string{"list at least one"}},
		{"uppercase", authz.Config{Collectors: []string{"Node1"}}, []string{`collectors[0]: "Node1"`, `"node1"`}},
		{"dot", authz.Config{Sinks: []string{"a.b"}}, []string{`sinks[0]: "a.b"`}},
		{"wildcard", authz.Config{Collectors: []string{">"}}, []string{`collectors[0]`}},
		{"duplicate", authz.Config{Collectors: []string{"n", "n"}}, []string{`collectors[1]: "n" listed twice`}},
		{"partitions", authz.Config{Sinks: []string{"ch"}, Partitions: -1}, []string{"partitions: must be"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestUsersKeepSeeds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seeds")
	cfg := authz.Config{Collectors: []string{"node1"}, Sinks: []string{"ch"}}
	first, err := authz.Users(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 4 {
		t.Fatalf("got %d users, want 4 (admin, processor, collector, sink)", len(first))
	}
	for _, u := range first {
		path := authz.SeedFile(dir, u.Identity)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
		}
		seed, _ := os.ReadFile(path)
		kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if pub, _ := kp.PublicKey(); pub != u.NKey {
			t.Errorf("%s: seed's key %s, user's %s", u.Name(), pub, u.NKey)
		}
	}
	again, err := authz.Users(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, again) {
		t.Error("a second run changed the users: deployed seeds would stop working")
	}
}

func TestUsersRefuseBadSeedFiles(t *testing.T) {
	cfg := authz.Config{Sinks: []string{"ch"}}
	sink := authz.Identity{Role: authz.RoleSink, ID: "ch"}
	t.Run("readable by others", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := authz.Users(cfg, dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(authz.SeedFile(dir, sink), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := authz.Users(cfg, dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("got %v, want a refusal naming chmod 600", err)
		}
	})
	t.Run("not a seed, not echoed", func(t *testing.T) {
		dir := t.TempDir()
		secret := "SUNOTAVALIDSEEDBUTSECRETANYWAY"
		if err := os.WriteFile(authz.SeedFile(dir, sink), []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := authz.Users(cfg, dir)
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error echoes the file's content: %v", err)
		}
	})
}

// TestServerConfig renders users with fixed keys, compares with the golden
// file, and has nats-server parse it back into the same users.
func TestServerConfig(t *testing.T) {
	cfg := authz.Config{Collectors: []string{"node1"}, Sinks: []string{"ch"}, Partitions: 2}
	var users []authz.User
	for i, id := range cfg.Identities() {
		kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, bytes.Repeat([]byte{byte(i + 1)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		users = append(users, authz.User{Identity: id, NKey: pub, Permissions: cfg.Permissions(id)})
	}
	got := authz.ServerConfig(users)
	golden := filepath.Join("testdata", "server.conf")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("ServerConfig differs from %s (run with -update after checking):\n%s", golden, got)
	}
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(got), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects the generated config: %v", err)
	}
	if !reflect.DeepEqual(opts.Nkeys, authz.NkeyUsers(users)) {
		t.Errorf("parsed users differ from NkeyUsers:\n got %+v\nwant %+v", opts.Nkeys, authz.NkeyUsers(users))
	}
}
