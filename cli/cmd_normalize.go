package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
)

func newNormalizeCommand() *cobra.Command {
	var source, configPath string
	cmd := &cobra.Command{
		Use:   "normalize --source SOURCE [FILE]",
		Short: "Normalize raw source records (JSON lines) into events, printed as JSON lines",
		Long: "Reads raw records of SOURCE, one per line, from FILE or stdin, and prints each as the normalized\n" +
			"event exactly as the Elasticsearch sink indexes it. A malformed record is reported on stderr\n" +
			"with its line number; the rest is still processed, and the exit code is 1 at the end.\n\n" +
			"SOURCE is one of: " + strings.Join(topology.Sources(), ", ") + ".",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := loadConfig(configPathFromEnv(configPath))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			reg, err := sources.NewRegistry(cfg.Processor.Normalize)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if _, ok := reg.Lookup(source); !ok {
				return &exitError{code: 2, err: fmt.Errorf("--source %q: not a source this build normalizes (have: %s)", source, strings.Join(reg.Sources(), ", "))}
			}
			norm, err := normalize.New(cfg.Processor.Normalize, reg)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			in, name, closeIn, err := openInput(cmd.InOrStdin(), args)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer closeIn()
			stderr := cmd.ErrOrStderr()
			ok, bad, err := normalize.Lines(cmd.Context(), in, norm, source, cmd.OutOrStdout(), func(line int, err error) {
				fmt.Fprintf(stderr, "%s:%d: %v\n", name, line, err)
			})
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("normalize %s: %w", name, err)}
			}
			if bad > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%s: %d of %d records rejected", name, bad, ok+bad)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "source of the records: "+strings.Join(topology.Sources(), ", "))
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (its processor.normalize section applies)")
	_ = cmd.MarkFlagRequired("source")
	return cmd
}

// openInput returns FILE, or stdin when no file (or "-") is given.
func openInput(stdin io.Reader, args []string) (io.Reader, string, func(), error) {
	if len(args) == 0 || args[0] == "-" {
		return stdin, "stdin", func() {}, nil
	}
	f, err := os.Open(args[0])
	if err != nil {
		return nil, "", nil, fmt.Errorf("open input: %w", err)
	}
	return f, args[0], func() { _ = f.Close() }, nil
}
