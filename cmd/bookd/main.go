// Command bookd is a whole bookd node: `bookd serve` runs one, `bookd
// loadgen` runs a flash sale against one, `bookd version` prints its version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // slots are cut in listings' time zones, also in a scratch image
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bookd:", err)
		}
		os.Exit(2)
	}
}

const usage = `bookd is a booking runtime: every bookable resource is an actor.

Usage:
  bookd serve [flags]    run a node (bookd serve -h lists the flags)
  bookd loadgen [flags]  run a flash sale against a node (bookd loadgen -h lists the flags)
  bookd cluster status   print a node's view of the cluster (--target URL)
  bookd watch <topic>    print live availability changes (bookd watch -h)
  bookd admin create     create an admin account (--email; the password on standard input)
  bookd version          print the version
`

// run runs one subcommand; ctx ends on SIGINT or SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return (&Serve{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "loadgen":
		return (&Loadgen{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "admin":
		return (&AdminCmd{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "cluster":
		return (&ClusterCmd{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "watch":
		return (&Watch{Stdout: stdout, Stderr: stderr}).Run(ctx, args[1:])
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
