package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
)

// newNATSAuthCommand generates the NATS identities of docs/bus-security.md.
func newNATSAuthCommand() *cobra.Command {
	var seeds, out string
	cmd := &cobra.Command{
		Use:   "nats-auth IDENTITIES.yaml",
		Short: "Generate per-component NATS nkey users and their nats-server authorization block",
		Long: "Reads the identities (collectors, node_collectors, sinks, partitions) from IDENTITIES.yaml, keeps one nkey\n" +
			"seed per identity in --seeds (created 0600; existing seeds are reused), and writes the\n" +
			"nats-server authorization block (public keys and allow lists, no secret) to --out or stdout.\n" +
			"See docs/bus-security.md.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if seeds == "" {
				return &exitError{code: 2, err: fmt.Errorf("--seeds DIR is required: the seed files are written there")}
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			var cfg authz.Config
			dec := yaml.NewDecoder(bytes.NewReader(raw))
			dec.KnownFields(true) // a typo in a key must not silently drop identities
			if err := dec.Decode(&cfg); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: %w", args[0], err)}
			}
			users, err := authz.Users(cfg, seeds)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: %w", args[0], err)}
			}
			conf := authz.ServerConfig(users)
			if out == "" {
				_, err = cmd.OutOrStdout().Write([]byte(conf))
				return err
			}
			if err := os.WriteFile(out, []byte(conf), 0o644); err != nil {
				return &exitError{code: 1, err: err}
			}
			for _, u := range users {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\tnkey_file %s\tinbox_prefix %s\n", u.Name(), authz.SeedFile(seeds, u.Identity), u.InboxPrefix())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&seeds, "seeds", "", "directory of the identities' nkey seed files (created 0700)")
	cmd.Flags().StringVar(&out, "out", "", "file to write the nats-server authorization block to (default stdout)")
	return cmd
}
