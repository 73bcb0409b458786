#!/bin/bash
set -euo pipefail
echo backup
