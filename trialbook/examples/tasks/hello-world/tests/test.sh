#!/usr/bin/env bash
# Reward 1 when /app/hello.txt holds exactly "Hello, world!".
if [ "$(cat /app/hello.txt 2>/dev/null)" = "Hello, world!" ]; then
  echo "PASS: hello.txt is correct"; echo 1 > /logs/verifier/reward.txt
else
  echo "FAIL: hello.txt missing or wrong"; echo 0 > /logs/verifier/reward.txt
fi
