#!/usr/bin/env bash
wc -w < /app/poem.txt | tr -d " " > /app/answer.txt
