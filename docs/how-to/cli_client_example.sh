#!/bin/sh
# Subscribe and publish from a shell with appsync-events, against a local emulator.
# Run it in an empty folder: it writes ready.json, events.jsonl and sub.log there.
set -eu

# Start an emulator that writes its endpoints and API key to ready.json, and stop it on exit.
appsync-emulator --port 0 --ready-file ready.json --no-console >emulator.log 2>&1 &
emulator=$!
trap 'kill "$emulator"' EXIT
tries=0
until [ -s ready.json ]; do
    tries=$((tries + 1))
    [ "$tries" -le 100 ] || { echo "the emulator did not start" >&2; exit 1; }
    sleep 0.1
done

# Print the next 4 events published under default/, one JSON line each; give up after 30 s.
# "subscribed to default/*" on stderr says when the subscription is active.
appsync-events sub --emulator ready.json --count 4 --timeout 30 'default/*' \
    >events.jsonl 2>sub.log &
subscriber=$!
tries=0
until grep -q subscribed sub.log; do
    tries=$((tries + 1))
    [ "$tries" -le 100 ] || { echo "the subscriber did not start" >&2; exit 1; }
    sleep 0.1
done

# Events as arguments, each a JSON value (quote text as a JSON string).
appsync-events pub --emulator ready.json default/chat '{"text": "hi"}' '"plain text"'

# Events as JSON lines on stdin, published over HTTP POST /event.
printf '%s\n' '{"n": 1}' '{"n": 2}' | appsync-events pub --emulator ready.json --http default/chat

wait "$subscriber"    # exit status 0: all 4 events arrived
cat events.jsonl
