#!/bin/sh
# run.sh — `make run`: serve the demo bank from ./data on 127.0.0.1:8080.
#
# The first start creates ./data, the tenant 'demo' and its admin key, and
# prints the key with example calls.  On later starts the first key is no
# longer known (only its hash is stored), so a fresh admin key is made.
# --demo: the demo bank encrypts personal data with a key it creates in
# ./data/data.key (a real bank provides SIYU_DATA_KEY or --data-key-file).
set -eu
cd "$(dirname "$0")/.."
LISTEN=${SIYU_LISTEN:-127.0.0.1:8080}
if [ -f data/siyu.db ]; then
    echo "==> ./data exists: creating a fresh admin key for tenant 'demo'" >&2
    KEY=$(./siyu key create --data data --tenant demo --role admin --name "make run" \
          --examples "$LISTEN")
    echo "" >&2
    echo "    admin key: $KEY" >&2
    echo "" >&2
fi
echo "==> siyu serving on http://$LISTEN  (Ctrl-C to stop)" >&2
exec ./siyu serve --data data --listen "$LISTEN" --demo
