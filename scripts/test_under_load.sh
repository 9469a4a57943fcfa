#!/usr/bin/env bash
# Run the test suite beside CPU burners (busy loops), to check that no test depends on the machine's
# speed. Extra arguments go to pytest.
#   bash scripts/test_under_load.sh              # one burner
#   BURNERS=2 bash scripts/test_under_load.sh    # two burners
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BURNERS="${BURNERS:-1}"
pids=()
for _ in $(seq "$BURNERS"); do
  python3 -c "while True: pass" &
  pids+=("$!")
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
echo "scripts/test_under_load.sh: ${BURNERS} CPU burner(s) running beside the tests (pids ${pids[*]})"
bash "$ROOT/scripts/test.sh" "$@"
