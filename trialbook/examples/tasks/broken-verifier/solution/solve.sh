#!/usr/bin/env bash
touch /app/done
