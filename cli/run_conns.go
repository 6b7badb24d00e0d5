package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
)

// busConn is one NATS connection and its JetStream handle.
type busConn struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// stageConns are the all-in-one's NATS connections. Without identities every
// stage shares one; with embedded.auth_dir each stage connects as its own
// identity (bus/authz), so the all-in-one enforces the same least privilege
// as a deployment: the collectors may only publish their own records, the
// processor only read raw and write events, each sink only read through its
// own consumers, and only the admin connection (topology, drain checks)
// manages streams.
type stageConns struct {
	admin, processor, collectors busConn
	sinks                        map[string]busConn
	all                          []*nats.Conn
}

// allInOneIdentities is the bus/authz config of the all-in-one's stages:
// its collector id, its enabled sinks, its partitions.
func allInOneIdentities(cfg Config) authz.Config {
	var sinks []string
	for _, c := range cfg.Sinks.Configured() {
		sinks = append(sinks, c.Name)
	}
	return authz.Config{
		Collectors: []string{cfg.Collectors.Publish.CollectorID},
		Sinks:      sinks,
		Partitions: cfg.Topology.Partitions,
	}
}

// embeddedUsers returns the users the embedded server requires when
// embedded.auth_dir is set: the identities' seeds are kept there (created
// 0600 on first run, reused after).
func embeddedUsers(cfg Config) ([]authz.User, error) {
	users, err := authz.Users(allInOneIdentities(cfg), cfg.Embedded.AuthDir)
	if err != nil {
		return nil, fmt.Errorf("embedded.auth_dir: %w", err)
	}
	return users, nil
}

// connectStages connects per base (the URL, TLS and timeouts of nats); with
// authDir set, once per identity with that identity's seed and inbox prefix.
func connectStages(ctx context.Context, base natsconn.Config, ids authz.Config, authDir string, logger *slog.Logger) (*stageConns, error) {
	s := &stageConns{sinks: map[string]busConn{}}
	connect := func(id authz.Identity) (busConn, error) {
		cfg, log := base, logger
		if authDir != "" {
			cfg.Name = "crowsnest-" + id.Name()
			cfg.NKeyFile = authz.SeedFile(authDir, id)
			cfg.CredsFile = ""
			cfg.InboxPrefix = id.InboxPrefix()
			log = logger.With("identity", id.Name())
		}
		nc, js, err := natsconn.Connect(ctx, cfg, log)
		if err != nil {
			return busConn{}, err
		}
		s.all = append(s.all, nc)
		return busConn{nc: nc, js: js}, nil
	}
	var err error
	if authDir == "" {
		shared, err := connect(authz.Identity{Role: authz.RoleAdmin})
		if err != nil {
			return nil, err
		}
		s.admin, s.processor, s.collectors = shared, shared, shared
		for _, name := range ids.Sinks {
			s.sinks[name] = shared
		}
		return s, nil
	}
	if s.admin, err = connect(authz.Identity{Role: authz.RoleAdmin}); err != nil {
		return nil, s.closeOn(err)
	}
	if s.processor, err = connect(authz.Identity{Role: authz.RoleProcessor}); err != nil {
		return nil, s.closeOn(err)
	}
	if s.collectors, err = connect(authz.Identity{Role: authz.RoleCollector, ID: ids.Collectors[0]}); err != nil {
		return nil, s.closeOn(err)
	}
	for _, name := range ids.Sinks {
		c, err := connect(authz.Identity{Role: authz.RoleSink, ID: name})
		if err != nil {
			return nil, s.closeOn(err)
		}
		s.sinks[name] = c
	}
	return s, nil
}

func (s *stageConns) closeOn(err error) error {
	s.close()
	return err
}

// connected reports the first connection that is down.
func (s *stageConns) connected() error {
	for _, nc := range s.all {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected to NATS (%s)", nc.Opts.Name)
		}
	}
	return nil
}

// drain drains every connection, flushing what is in flight.
func (s *stageConns) drain(logger *slog.Logger) {
	for _, nc := range s.all {
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			logger.Warn("drain NATS connection", "connection", nc.Opts.Name, "error", err)
		}
	}
}

func (s *stageConns) close() {
	for _, nc := range s.all {
		nc.Close()
	}
}
