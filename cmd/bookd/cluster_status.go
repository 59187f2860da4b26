package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bookd/bookd/cluster"
)

// ClusterCmd is `bookd cluster`: `bookd cluster status` prints a node's view
// of the cluster (GET /v1/cluster) as a table.
type ClusterCmd struct {
	Stdout, Stderr io.Writer

	Target  string
	Token   string // an admin's access token: /v1/cluster is for admins
	Timeout time.Duration
}

// Run runs `bookd cluster <subcommand>`.
func (c *ClusterCmd) Run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(c.Stderr, "Usage: bookd cluster status [--target URL] [--token TOKEN]")
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("cluster status", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.StringVar(&c.Target, "target", "http://127.0.0.1:3000", "base URL of any node's API")
	fs.StringVar(&c.Token, "token", os.Getenv("BOOKD_TOKEN"), "an admin's access token (default $BOOKD_TOKEN)")
	fs.DurationVar(&c.Timeout, "timeout", 5*time.Second, "how long to wait for the node")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cluster status: unexpected argument %q", fs.Arg(0))
	}
	st, err := fetchClusterStatus(ctx, c.Target, c.Token, c.Timeout)
	if err != nil {
		return err
	}
	return printClusterStatus(c.Stdout, st)
}

// fetchClusterStatus reads GET /v1/cluster at target with an admin's
// access token (none when token is empty).
func fetchClusterStatus(ctx context.Context, target, token string, timeout time.Duration) (cluster.Status, error) {
	var st cluster.Status
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(target, "/")+"/v1/cluster", nil)
	if err != nil {
		return st, fmt.Errorf("--target: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /v1/cluster: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("GET /v1/cluster: %w", err)
	}
	if st.Node == "" {
		return st, errors.New("GET /v1/cluster: the answer names no node")
	}
	return st, nil
}

// printClusterStatus writes one row per member; the node that answered is
// marked with a star.
func printClusterStatus(w io.Writer, st cluster.Status) error {
	total := 0
	for _, m := range st.Members {
		total += m.Active
	}
	fmt.Fprintf(w, "view of node %s (%s), %d members, %d resources active\n\n", st.Node, st.Mode, len(st.Members), total)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tMEMBER\tSTATE\tPLACEMENT\tACTOR ADDRESS\tGOSSIP ADDRESS\tACTIVE\tSHARE")
	for _, m := range st.Members {
		self, placement, gossip := "", "no", m.GossipAddress
		if m.Self {
			self = "*"
		}
		if m.Placement {
			placement = "yes"
		}
		if gossip == "" {
			gossip = "-"
		}
		share := "-"
		if total > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(m.Active)/float64(total))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", self, m.ID, m.State, placement, m.ActorAddress, gossip, m.Active, share)
	}
	return tw.Flush()
}
