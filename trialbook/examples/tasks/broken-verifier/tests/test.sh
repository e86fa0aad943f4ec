#!/usr/bin/env bash
# Deliberately broken: checks the file but forgets to write /logs/verifier/reward.txt.
test -f /app/done && echo "done exists" || echo "done missing"
