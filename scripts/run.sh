#!/bin/sh
# run.sh — `make run`: serve the demo bank from ./data on 127.0.0.1:8080.
#
# The first run generates ./data with the tenant 'demo': a synthetic bank of
# 100,000 customers (51 attributes, 50 tags) and 30 days of app behaviour
# (`siyu demo`).  Every run then creates an admin key (revoking the ones
# earlier runs made), prints it with example calls, and serves.
# --demo: the demo bank encrypts personal data with a key it creates in
# ./data/data.key (a real bank provides SIYU_DATA_KEY or --data-key-file).
set -eu
cd "$(dirname "$0")/.."
LISTEN=${SIYU_LISTEN:-127.0.0.1:8080}
if [ ! -f data/siyu.db ]; then
    echo "==> First run: generating the demo bank (${SIYU_DEMO_CUSTOMERS:-100000} customers, 30 days of behaviour)" >&2
    ./siyu demo --data data --tenant demo --customers "${SIYU_DEMO_CUSTOMERS:-100000}" \
        --days 30 --seed 1
fi
# One server per data directory: say so before making a key for it.
if [ -f data/siyu.lock ] && ! flock -n data/siyu.lock true; then
    echo "run: another siyu serve is using ./data already (stop it first)" >&2
    exit 1
fi
# Only a hash of each key is stored, so every run makes a fresh admin key;
# the ones earlier runs made are revoked, so that they do not pile up.
KEY=$(./siyu key create --data data --tenant demo --role admin --name "make run" \
      --examples "$LISTEN")
NEW_ID="key_$(echo "$KEY" | cut -d_ -f2)"
./siyu key list --data data --tenant demo |
    awk -v new="$NEW_ID" 'NR > 1 && $4 == "-" && $5 == "make" && $6 == "run" && $NF == "run" &&
                          NF == 6 && $1 != new {print $1}' |
    while read -r old; do
        { ./siyu key revoke --data data --tenant demo "$old" >/dev/null &&
            echo "    revoked the admin key of an earlier make run: $old" >&2; } || true
    done
echo "" >&2
echo "    admin key: $KEY" >&2
echo "" >&2
echo "==> siyu serving on http://$LISTEN  (Ctrl-C to stop)" >&2
exec ./siyu serve --data data --listen "$LISTEN" --demo
