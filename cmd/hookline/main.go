// Command hookline is hookline's command-line tool: `hookline dev` runs the
// whole pipeline locally, `hookline send` posts signed sample webhooks,
// `hookline check` checks a configuration file before a deployment, and
// status, inspect, dlq, pause, resume, skip and paused let an operator see
// and fix what is stuck in a deployment's queues.
package main

import (
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "hookline",
		Short:         "Serverless webhook processing: in order per key, in parallel across keys, within rate limits",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newDevCmd(), newSendCmd(), newCheckCmd(),
		newStatusCmd(), newInspectCmd(), newDLQCmd(), newPauseCmd(), newResumeCmd(), newSkipCmd(), newPausedCmd())
	return root
}
