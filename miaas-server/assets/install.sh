#!/bin/sh
# Installs and starts the MIaaS agent on this Linux machine, from the control
# plane that served this script:
#
#   curl -fsSL https://cp:8443/install.sh | sh -s - --join-token TOKEN [options]
#
# The server fills in its address and, for a certificate of its own CA, the pin
# of its public key: the binary is fetched with the same pin, and checked against
# the SHA-256 the server publishes for it (which catches a corrupted download or
# a binary changed after its release; the pin is what keeps a man in the middle
# out). Everything happens in main, called on the last line: a script cut short
# in transit runs nothing.
set -eu

server_url=@SERVER_URL@
public_key_pin=@PUBLIC_KEY_PIN@

usage() {
	cat <<'USAGE'
Usage: sh install.sh --join-token TOKEN [options]

  --join-token TOKEN  the cluster's join token (`miaas tokens join`), pinned or not
  --name NAME         the node's name [default: the host name]
  --tags TAGS         the node's tags, comma-separated (zone=eu,ssd)
  --runtime RUNTIME   docker (default) or simulated
  --prefix DIR        install the binary as DIR/bin/miaas [default: /usr/local]
  --state-dir DIR     the agent's identity, files and logs [default: /var/lib/miaas-agent]
  --no-start          install only: do not start the agent
  --no-systemd        no systemd unit: start the agent in the background, with its
                      log and pid file in the state directory
USAGE
}

say() { printf '%s\n' "$*"; }
die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

value_of() {
	[ $# -ge 2 ] || die "$1 needs a value"
	printf '%s' "$2"
}

# Values go into an environment file read by systemd and by sh: only plain ones.
plain() {
	case "$2" in
	*[!A-Za-z0-9_.,:=/@+\[\]-]*) die "$1 may hold only letters, digits and _.,:=/@+[]- (got: $2)" ;;
	esac
}

# Every request to the server: with the pin when the server has its own CA.
# Extra curl arguments come first; the URL last.
fetch() {
	if [ -n "$public_key_pin" ]; then
		curl -sS -L --pinnedpubkey "$public_key_pin" -k "$@"
	else
		curl -sS -L "$@"
	fi
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d ' ' -f 1
	elif command -v shasum >/dev/null 2>&1; then
		shasum -a 256 "$1" | cut -d ' ' -f 1
	elif command -v openssl >/dev/null 2>&1; then
		openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1
	else
		die "no sha256sum, shasum or openssl to check the download with"
	fi
}

# The node is online once it registered (its identity is saved) and the server
# accepts its token; the join token then leaves the environment file, so that a
# node removed by an admin does not join again by itself.
wait_until_online() {
	identity="$state_dir/identity.json"
	tries=0
	while :; do
		if [ -f "$identity" ]; then
			node_id=$(sed -n 's/.*"node_id": *"\([^"]*\)".*/\1/p' "$identity")
			node_name=$(sed -n 's/.*"name": *"\([^"]*\)".*/\1/p' "$identity")
			token=$(sed -n 's/.*"node_token": *"\([^"]*\)".*/\1/p' "$identity")
			if [ -n "$node_id" ] && [ -n "$token" ]; then
				# the header from standard input: a token on the command line shows in ps
				status=$(printf 'Authorization: Bearer %s\n' "$token" |
					fetch -o /dev/null -w '%{http_code}' -H @- \
						"$server_url/api/v1/nodes/$node_id/deployments" || true)
				if [ "$status" = 200 ]; then
					grep -v '^MIAAS_JOIN_TOKEN=' "$env_file" >"$env_file.new" || true
					mv -f "$env_file.new" "$env_file"
					say "Node $node_name is online ($node_id)"
					return 0
				fi
			fi
		fi
		tries=$((tries + 1))
		if [ "$tries" -ge 60 ]; then
			if [ "$systemd" = 1 ]; then
				die "the agent did not come online within 60 s: see journalctl -u miaas-agent"
			fi
			die "the agent did not come online within 60 s: see $state_dir/agent.log"
		fi
		sleep 1
	done
}

main() {
	join_token='' name='' tags='' runtime='' prefix=/usr/local
	state_dir=/var/lib/miaas-agent start=1 systemd=1
	while [ $# -gt 0 ]; do
		case "$1" in
		--join-token) join_token=$(value_of "$@"); shift 2 ;;
		--join-token=*) join_token=${1#*=}; shift ;;
		--name) name=$(value_of "$@"); shift 2 ;;
		--name=*) name=${1#*=}; shift ;;
		--tags) tags=$(value_of "$@"); shift 2 ;;
		--tags=*) tags=${1#*=}; shift ;;
		--runtime) runtime=$(value_of "$@"); shift 2 ;;
		--runtime=*) runtime=${1#*=}; shift ;;
		--prefix) prefix=$(value_of "$@"); shift 2 ;;
		--prefix=*) prefix=${1#*=}; shift ;;
		--state-dir) state_dir=$(value_of "$@"); shift 2 ;;
		--state-dir=*) state_dir=${1#*=}; shift ;;
		--no-start) start=0; shift ;;
		--no-systemd) systemd=0; shift ;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown option $1 (see --help)" ;;
		esac
	done

	[ -n "$join_token" ] || die "--join-token is required (an admin prints it with: miaas tokens join)"
	case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
	case "$state_dir" in /*) ;; *) state_dir="$(pwd)/$state_dir" ;; esac
	plain --join-token "$join_token"
	plain --name "$name"
	plain --tags "$tags"
	plain --state-dir "$state_dir"
	plain --prefix "$prefix"
	plain "the server's URL" "$server_url"
	case "$runtime" in
	'' | docker | simulated) ;;
	*) die "--runtime is docker or simulated (got: $runtime)" ;;
	esac

	[ "$(uname -s)" = Linux ] || die "the agent runs on Linux; this is $(uname -s)"
	command -v curl >/dev/null 2>&1 || die "curl is needed"
	case "$(uname -m)" in
	x86_64 | amd64) arch=x86_64 ;;
	aarch64 | arm64) arch=aarch64 ;;
	armv7*) arch=armv7 ;;
	*) arch=$(uname -m) ;;
	esac

	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	trap 'rm -rf "$work"; exit 130' INT TERM

	file="miaas-linux-$arch"
	status=$(fetch -o "$work/sha256" -w '%{http_code}' "$server_url/download/$file.sha256") ||
		die "cannot reach $server_url (a wrong pin is refused too)"
	if [ "$status" != 200 ]; then
		detail=$(sed -n 's/.*"detail": *"\([^"]*\)".*/\1/p' "$work/sha256")
		die "the server offers no agent for linux-$arch: ${detail:-HTTP $status}"
	fi
	expected=$(cut -d ' ' -f 1 "$work/sha256")
	say "Downloading $file from $server_url"
	status=$(fetch -o "$work/miaas" -w '%{http_code}' "$server_url/download/$file") ||
		die "the download from $server_url failed"
	[ "$status" = 200 ] || die "the download from $server_url failed: HTTP $status"
	actual=$(sha256_of "$work/miaas")
	if [ "$actual" != "$expected" ]; then
		die "refusing to install: the download's SHA-256 is $actual, the server published $expected"
	fi

	mkdir -p "$prefix/bin"
	chmod 0755 "$work/miaas"
	cp "$work/miaas" "$prefix/bin/.miaas.new"
	mv -f "$prefix/bin/.miaas.new" "$prefix/bin/miaas"
	binary="$prefix/bin/miaas"
	say "Installed $binary (sha256 $actual)"

	umask 077
	mkdir -p "$state_dir"
	chmod 0700 "$state_dir"
	env_file="$state_dir/agent.env"
	{
		say "MIAAS_SERVER=$server_url"
		say "MIAAS_JOIN_TOKEN=$join_token"
		say "MIAAS_AGENT_STATE_DIR=$state_dir"
		[ -z "$name" ] || say "MIAAS_AGENT_NAME=$name"
		[ -z "$tags" ] || say "MIAAS_AGENT_TAGS=$tags"
		[ -z "$runtime" ] || say "MIAAS_AGENT_RUNTIME=$runtime"
	} >"$env_file"
	chmod 0600 "$env_file"
	say "Wrote $env_file (mode 0600; the join token leaves it once the node joined)"

	if [ "$start" = 0 ]; then
		say "Installed, not started (--no-start). Start it with:"
		say "  set -a; . $env_file; set +a; $binary agent"
		return 0
	fi

	if [ "$systemd" = 1 ]; then
		if ! command -v systemctl >/dev/null 2>&1 || [ ! -d /run/systemd/system ]; then
			die "systemd is not running here: use --no-systemd"
		fi
		unit=/etc/systemd/system/miaas-agent.service
		cat >"$unit" <<UNIT
[Unit]
Description=MIaaS node agent
After=network-online.target docker.service
Wants=network-online.target

[Service]
EnvironmentFile=$env_file
ExecStart=$binary agent
Restart=always
RestartSec=5
# stop the agent, not the containers it started
KillMode=process

[Install]
WantedBy=multi-user.target
UNIT
		chmod 0644 "$unit"
		systemctl daemon-reload
		systemctl enable miaas-agent.service
		# a second run replaces the binary and the settings: start them
		systemctl restart miaas-agent.service
		say "Started the systemd unit miaas-agent (journalctl -u miaas-agent for its log)"
	else
		log="$state_dir/agent.log"
		pid_file="$state_dir/agent.pid"
		if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
			kill "$(cat "$pid_file")" 2>/dev/null || true
		fi
		(
			set -a
			# shellcheck disable=SC1090
			. "$env_file"
			set +a
			exec "$binary" agent
		) >"$log" 2>&1 </dev/null &
		echo $! >"$pid_file"
		say "Started the agent in the background (log $log, pid $(cat "$pid_file"))"
		say "Stop it with: kill \$(cat $pid_file)"
	fi
	wait_until_online
}

main "$@"
