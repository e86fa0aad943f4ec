#!/usr/bin/env bash
if [ -x /app/greet.sh ] && [ "$(/app/greet.sh ada)" = "hi ada" ]; then
  echo "PASS"; echo 1 > /logs/verifier/reward.txt
else
  echo "FAIL"; echo 0 > /logs/verifier/reward.txt
fi
