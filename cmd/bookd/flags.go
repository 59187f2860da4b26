package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// envTwins sets every flag of fs that was not given on the command line from
// its environment twin: --batch-max ← BOOKD_BATCH_MAX.
func envTwins(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			// fs.Set, so that the flag counts as given (fs.Visit sees it).
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
		}
	})
	return err
}

func envName(flagName string) string {
	return "BOOKD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
