package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with configuration files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a configuration file: unknown keys, types and values, with line numbers",
		Long: "Loads FILE over the defaults, applies CROWSNEST_* environment overrides, and validates\n" +
			"every section. Exits 0 and prints a summary when the file is good, 1 with every problem otherwise.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, applied, err := loadConfig(args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			cfg.resolve()
			if err := cfg.Validate(); err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: invalid configuration:\n%w", args[0], err)}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: ok\n", args[0])
			if len(applied) > 0 {
				fmt.Fprintf(out, "environment overrides applied:\n%s", describeOverrides(applied))
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "defaults",
		Short: "Print the built-in defaults as a configuration file to start from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := yaml.Marshal(newDefaultConfig())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
	return cmd
}
