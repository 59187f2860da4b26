package testserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// osUser is a system user that a server runs as.
type osUser struct {
	name     string
	uid, gid int
}

// postgresSystemUser is the user PostgreSQL runs as when we are root.
const postgresSystemUser = "postgres"

// postgresUser returns the user the PostgreSQL commands must run as: nil
// (ourselves) unless the process runs as root, which PostgreSQL refuses;
// then the system user "postgres", created with useradd when missing.
func postgresUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := lookupUser(postgresSystemUser)
	if err == nil {
		return u, nil
	}
	if !errors.As(err, new(user.UnknownUserError)) {
		return nil, err
	}
	if err := createSystemUser(postgresSystemUser); err != nil {
		return nil, err
	}
	return lookupUser(postgresSystemUser)
}

func lookupUser(name string) (*osUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return &osUser{name: name, uid: uid, gid: gid}, nil
}

// createSystemUser adds a system user and its group. Test binaries of
// several packages may do it at once: useradd then fails to lock
// /etc/passwd (exit status 10) and is retried, or finds the user made
// (exit status 9), which is success.
func createSystemUser(name string) error {
	const (
		exitUserExists = 9
		exitCannotLock = 10
	)
	var out []byte
	var err error
	for range 50 {
		out, err = exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/bin/false", name).CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &exit) && exit.ExitCode() == exitUserExists:
			return nil
		case errors.As(err, &exit) && exit.ExitCode() == exitCannotLock:
			time.Sleep(100 * time.Millisecond)
			continue
		}
		break
	}
	return fmt.Errorf("create the system user %s to run PostgreSQL as (it refuses to run as root): useradd: %w: %s",
		name, err, strings.TrimSpace(string(out)))
}

// prepareDir creates dir (and its parents) for a server that runs as u,
// nil meaning ourselves, and returns its absolute path. For another user it
// gives dir to that user and makes sure the user can reach it: a parent
// that others may not search (t.TempDir's parents are mode 0700) gets the
// search bit for others, which lets them pass through but not list it —
// only below os.TempDir(), though; elsewhere prepareDir fails and says why.
func prepareDir(dir string, u *osUser) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", err
	}
	if u == nil {
		return abs, nil
	}
	if err := os.Chown(abs, u.uid, u.gid); err != nil {
		return "", fmt.Errorf("give %s to user %s: %w", abs, u.name, err)
	}
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	for p := filepath.Dir(real); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if mode := st.Mode().Perm(); mode&0o001 == 0 {
			if !strings.HasPrefix(p, tmp+string(filepath.Separator)) {
				return "", fmt.Errorf("user %s, which runs the server, cannot reach %s: %s has mode %v; use a folder under %s",
					u.name, abs, p, mode, os.TempDir())
			}
			if err := os.Chmod(p, mode|0o001); err != nil {
				return "", fmt.Errorf("let user %s reach %s: %w", u.name, abs, err)
			}
		}
		if p == filepath.Dir(p) {
			return abs, nil
		}
	}
}
