package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/access"
	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	essink "github.com/crowsnest-siem/crowsnest/sinks/elasticsearch"
)

// Administrator passwords come from these variables or from files, never
// from arguments (which any local user can read in /proc).
const (
	envCHAdminPassword = "CROWSNEST_CLICKHOUSE_ADMIN_PASSWORD"
	envESAdminPassword = "CROWSNEST_ELASTICSEARCH_ADMIN_PASSWORD"
)

// storeAdmin is how to reach one store as its administrator.
type storeAdmin struct {
	url, user, passwordFile, caFile string
	env                             string
}

// password reads the administrator's password from its file or variable.
func (a storeAdmin) password() (config.Secret, error) {
	if a.passwordFile != "" {
		b, err := os.ReadFile(a.passwordFile)
		if err != nil {
			return "", err
		}
		return config.Secret(strings.TrimRight(string(b), "\r\n")), nil
	}
	return config.Secret(os.Getenv(a.env)), nil
}

// newStoreAccessCommand renders (and applies) the stores' access control.
func newStoreAccessCommand() *cobra.Command {
	var passwords, out string
	ch := storeAdmin{env: envCHAdminPassword}
	es := storeAdmin{env: envESAdminPassword}
	cmd := &cobra.Command{
		Use:   "store-access TENANTS.yaml",
		Short: "Generate least-privilege ClickHouse and Elasticsearch users, roles and tenant row/document policies",
		Long: "Reads the writer, analysts and tenants from TENANTS.yaml, keeps one password per user in\n" +
			"--passwords (created 0600; existing ones are reused), and writes the ClickHouse statements\n" +
			"and Elasticsearch roles and users to --out, and/or applies them with --clickhouse-url and\n" +
			"--elasticsearch-url as an administrator whose password comes from " + envCHAdminPassword + "\n" +
			"/ " + envESAdminPassword + " or a --*-password-file, never from an argument.\n" +
			"See docs/store-access.md.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			usage := func(format string, a ...any) error { return &exitError{code: 2, err: fmt.Errorf(format, a...)} }
			if passwords == "" {
				return usage("--passwords DIR is required: the users' passwords are kept there")
			}
			if out == "" && ch.url == "" && es.url == "" {
				return usage("nothing to do: give --out DIR, --clickhouse-url or --elasticsearch-url")
			}
			for _, a := range []struct{ flag, v string }{{"--clickhouse-url", ch.url}, {"--elasticsearch-url", es.url}} {
				if u, err := url.Parse(a.v); a.v != "" && (err != nil || u.User != nil) {
					return usage("%s must be a URL without credentials (the password comes from the environment or a file)", a.flag)
				}
			}
			f, err := os.Open(args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			cfg, err := access.Decode(f)
			f.Close()
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: %w", args[0], err)}
			}
			pw, err := access.LoadPasswords(passwords, cfg.Users())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			stmts, err := access.ClickHouseStatements(cfg, pw, nil)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			plan, err := access.ElasticsearchPlan(cfg, pw, bcrypt.DefaultCost)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if out != "" {
				if err := writeStoreAccess(out, stmts, plan); err != nil {
					return &exitError{code: 1, err: err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", filepath.Join(out, "clickhouse.sql"), filepath.Join(out, "elasticsearch"))
			}
			if ch.url != "" {
				if err := applyClickHouse(cmd, ch, cfg.ClickHouse.Database, stmts); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			if es.url != "" {
				if err := applyElasticsearch(cmd, es, plan); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&passwords, "passwords", "", "directory of the users' password files, one per user (created 0700)")
	fl.StringVar(&out, "out", "", "directory to write clickhouse.sql and elasticsearch/{roles,users}/*.json to")
	fl.StringVar(&ch.url, "clickhouse-url", "", "apply to this ClickHouse (http(s):// or clickhouse(s)://)")
	fl.StringVar(&ch.user, "clickhouse-user", "default", "ClickHouse administrator (access_management)")
	fl.StringVar(&ch.passwordFile, "clickhouse-password-file", "", "file holding the ClickHouse administrator's password (default $"+envCHAdminPassword+")")
	fl.StringVar(&ch.caFile, "clickhouse-ca-file", "", "PEM CA to trust for the ClickHouse server (pinned: the system roots are not used)")
	fl.StringVar(&es.url, "elasticsearch-url", "", "apply to this Elasticsearch")
	fl.StringVar(&es.user, "elasticsearch-user", "elastic", "Elasticsearch administrator (manage_security)")
	fl.StringVar(&es.passwordFile, "elasticsearch-password-file", "", "file holding the Elasticsearch administrator's password (default $"+envESAdminPassword+")")
	fl.StringVar(&es.caFile, "elasticsearch-ca-file", "", "PEM CA to trust for Elasticsearch (pinned)")
	return cmd
}

// writeStoreAccess writes the statements and the Elasticsearch bodies. The
// user bodies hold password hashes: 0600, like the script.
func writeStoreAccess(dir string, stmts []string, plan access.ESPlan) error {
	for _, d := range []string{"elasticsearch/roles", "elasticsearch/users"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "clickhouse.sql"), []byte(access.ClickHouseScriptOf(stmts)), 0o600); err != nil {
		return err
	}
	put := func(path string, v any, mode os.FileMode) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(path, append(b, '\n'), mode)
	}
	for _, r := range plan.Roles {
		if err := put(filepath.Join(dir, "elasticsearch/roles", r.Name+".json"), r, 0o644); err != nil {
			return err
		}
	}
	for _, u := range plan.Users {
		if err := put(filepath.Join(dir, "elasticsearch/users", u.Name+".json"), u, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func applyClickHouse(cmd *cobra.Command, a storeAdmin, database string, stmts []string) error {
	pw, err := a.password()
	if err != nil {
		return fmt.Errorf("clickhouse: administrator password: %w", err)
	}
	cfg := chsink.NewDefaultConfig()
	cfg.URL, cfg.Database, cfg.Username, cfg.Password = a.url, "default", a.user, pw
	cfg.TLS.CAFile = a.caFile
	conn, err := chsink.Open(cfg)
	if err != nil {
		return err
	}
	err = access.ApplyClickHouse(cmd.Context(), conn, stmts)
	if cerr := conn.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "clickhouse: applied %d statements for database %s\n", len(stmts), database)
	return nil
}

func applyElasticsearch(cmd *cobra.Command, a storeAdmin, plan access.ESPlan) error {
	pw, err := a.password()
	if err != nil {
		return fmt.Errorf("elasticsearch: administrator password: %w", err)
	}
	if !pw.IsSet() {
		return errors.New("elasticsearch: no administrator password: set " + envESAdminPassword + " or --elasticsearch-password-file")
	}
	cfg := essink.NewDefaultConfig()
	cfg.Addresses, cfg.Username, cfg.Password = []string{a.url}, a.user, pw
	cfg.TLS.CAFile = a.caFile
	client, err := essink.Open(cfg)
	if err != nil {
		return err
	}
	if err := access.ApplyElasticsearch(cmd.Context(), client, plan); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "elasticsearch: applied %d roles and %d users\n", len(plan.Roles), len(plan.Users))
	return nil
}
