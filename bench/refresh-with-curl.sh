#!/bin/sh
# The steps of `session-refresher refresh-now`, done by hand with curl: the baseline of bench
# figure 5. Under a lock: when the cookie is past half its life, the include was changed, or
# --force: log in, write the include (temp file, fsync, rename), `nginx -t` (put the old include
# back if it fails), record the state, SIGHUP the master. Otherwise exit at once.
# It checks less than the tool (no cookie whitelist, no master check, no retries).
#
# Usage: refresh-with-curl.sh [--force] URL USER PASSWORD_FILE INCLUDE STATE_FILE NGINX PREFIX CONF PID_FILE
set -eu
force=0
if [ "$1" = "--force" ]; then force=1; shift; fi
url=$1 user=$2 password_file=$3 include=$4 state=$5 nginx=$6 prefix=$7 conf=$8 pid_file=$9

exec 9>"$state.lock"
flock 9

now=$(date +%s)
generation=0
if [ -f "$state" ]; then
  read -r generation issued expires sum < "$state"
  if [ "$force" = 0 ] && [ "$now" -lt $(( (issued + expires) / 2 )) ] &&
     [ "$(sha256sum < "$include" | cut -d' ' -f1)" = "$sum" ]; then
    echo "fresh, generation $generation; nothing to do"
    exit 0
  fi
fi
generation=$((generation + 1))

# The password goes to curl on stdin (printf is a shell builtin), never on a command line.
headers=$(printf '%s' "$(cat "$password_file")" |
  curl -sS --fail -o /dev/null -D - --max-time 10 --data-urlencode "name=$user" --data-urlencode "password@-" "$url/_session")
headers=$(printf '%s\n' "$headers" | tr -d '\r')
cookie=$(printf '%s\n' "$headers" | sed -n 's/^[Ss]et-[Cc]ookie: *\(AuthSession=[^;]*\).*/\1/p' | head -n 1)
[ -n "$cookie" ] || { echo "no AuthSession cookie in the answer" >&2; exit 76; }
max_age=$(printf '%s\n' "$headers" | sed -n 's/^[Ss]et-[Cc]ookie: .*[Mm]ax-[Aa]ge=\([0-9]*\).*/\1/p' | head -n 1)

tmp="$include.tmp.$$"
cp -p "$include" "$include.previous"
printf 'set $auth_cookie "%s";\nset $auth_cookie_generation "%s";\n' "$cookie" "$generation" > "$tmp"
sync "$tmp"
mv -f "$tmp" "$include"
if ! "$nginx" -t -q -p "$prefix" -c "$conf"; then
  mv -f "$include.previous" "$include"
  exit 70
fi
printf '%s %s %s %s\n' "$generation" "$now" "$((now + ${max_age:-600}))" "$(sha256sum < "$include" | cut -d' ' -f1)" > "$state"
kill -HUP "$(cat "$pid_file")"
echo "logged in, generation $generation"
