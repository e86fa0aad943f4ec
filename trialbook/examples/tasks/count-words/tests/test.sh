#!/usr/bin/env bash
want=30
got=$(tr -d '[:space:]' < /app/answer.txt 2>/dev/null)
echo "answer: ${got:-<none>} (want $want)"
if [ "$got" = "$want" ]; then echo 1 > /logs/verifier/reward.txt; else echo 0 > /logs/verifier/reward.txt; fi
