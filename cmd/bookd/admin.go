package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bookd/bookd/edge"
	"github.com/bookd/bookd/persistence"
)

// AdminCmd is `bookd admin create`: the first admin (and any other) comes
// from here, straight into the store, never from a default password.
type AdminCmd struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Run runs `bookd admin create [flags]`. The password is read from the
// first line of standard input (or BOOKD_ADMIN_PASSWORD), never from a
// flag, so that it stays out of shell history and ps.
func (a *AdminCmd) Run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(a.Stderr, "Usage: bookd admin create --email EMAIL [--name NAME] [--data DIR | --postgres URL] < password")
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("admin create", flag.ContinueOnError)
	fs.SetOutput(a.Stderr)
	email := fs.String("email", "", "the admin's email (required)")
	name := fs.String("name", "Administrator", "the admin's name")
	data := fs.String("data", "./data", "folder of the embedded store (unused with --postgres)")
	pg := fs.String("postgres", "", "PostgreSQL URL; the embedded SQLite store when empty")
	var sec securityFlags
	sec.register(flag.NewFlagSet("", flag.ContinueOnError)) // defaults only
	fs.UintVar(&sec.Argon2Memory, "argon2-memory", sec.Argon2Memory, "argon2id memory cost, KiB")
	fs.UintVar(&sec.Argon2Time, "argon2-time", sec.Argon2Time, "argon2id passes")
	fs.UintVar(&sec.Argon2Threads, "argon2-threads", sec.Argon2Threads, "argon2id parallelism")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := envTwins(fs); err != nil {
		return err
	}
	if *email == "" || !strings.Contains(*email, "@") {
		return errors.New("admin create: --email is required")
	}
	password, ok := os.LookupEnv("BOOKD_ADMIN_PASSWORD")
	if !ok {
		line, err := bufio.NewReader(a.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("admin create: read the password: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if why := edge.CheckPassword(password); why != "" {
		return fmt.Errorf("admin create: the password (standard input) %s", why)
	}
	// The store serve opens with the same flags.
	store, err := (&Serve{Postgres: *pg, DataDir: *data}).openStore(ctx)
	if err != nil {
		return fmt.Errorf("admin create: open store: %w", err)
	}
	defer store.Close()
	u := persistence.User{ID: edge.NewUserID(), Email: strings.ToLower(*email), Name: *name, Role: persistence.RoleAdmin,
		PasswordHash: sec.argon2().HashPassword(password)}
	if err := store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, persistence.ErrExists) {
			return fmt.Errorf("admin create: an account with email %s exists already", u.Email)
		}
		return fmt.Errorf("admin create: %w", err)
	}
	fmt.Fprintf(a.Stdout, "admin %s created: %s\n", u.Email, u.ID)
	return nil
}
