#!/usr/bin/env bash
# ensure-deps.sh installs the servers the tests start (PostgreSQL and Redis)
# and the headless browser the dashboard test drives (Chromium) with apt-get
# when they are missing; it exits 0 at once when all are there.
# `make test` runs it. It is idempotent: run it as often as you like.
#
# PostgreSQL is Debian's package `postgresql`, whose server binaries land in
# /usr/lib/postgresql/<version>/bin (not on PATH); initdb and pg_ctl on PATH
# do too (the Go side, testserver, looks in both places). Redis is Debian's
# `redis-server`.
set -euo pipefail

missing=()
have_postgres() {
	local bin
	for bin in /usr/lib/postgresql/*/bin; do
		[ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/postgres" ] && return 0
	done
	command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}
if ! have_postgres; then
	missing+=(postgresql)
fi
if ! command -v redis-server >/dev/null 2>&1; then
	missing+=(redis-server)
fi
# Any of the browsers the dashboard test looks for will do.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
	missing+=(chromium)
fi
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "ensure-deps: installing ${missing[*]}" >&2
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "ensure-deps: need root (or sudo) to install ${missing[*]}" >&2
		exit 1
	fi
}
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-deps: no apt-get here; install ${missing[*]} with your package manager" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The tests start their own servers on free ports in temporary folders;
# whatever service the packages set up is not used.
echo "ensure-deps: installed ${missing[*]}" >&2
