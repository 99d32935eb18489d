#!/usr/bin/env bash
# Regenerate the lock (uv.lock) and the hash-pinned pip requirements exported from it.
#
#   scripts/lock.sh                              # after editing pyproject.toml: re-lock, other pins kept
#   scripts/lock.sh --upgrade-package prefect    # also move one package to its newest allowed version
#   scripts/lock.sh --upgrade                    # move everything (then run the tests)
#   scripts/lock.sh --check                      # exit 1 if uv.lock or requirements/ are stale (CI)
#
# Arguments other than --check go to `uv lock`. Commit uv.lock and requirements/*.txt together.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}   # a uv that is not on PATH: UV=/path/to/uv scripts/lock.sh
export UV_SYSTEM_CERTS=${UV_SYSTEM_CERTS:-1}   # the system's CA store, as pip (see README "Install")

# requirements/<name>.txt <- the extras it installs (besides the project's own dependencies)
declare -A EXPORTS=([base]="" [test]="--extra test")

export_to() {  # $1 = name, $2 = output file
    # shellcheck disable=SC2086  # the extras are separate words on purpose
    "$UV" export --quiet --frozen --no-emit-project --format requirements-txt ${EXPORTS[$1]} \
        --no-header --output-file "$2"
}

if [[ "${1:-}" == "--check" ]]; then
    "$UV" lock --check
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    for name in "${!EXPORTS[@]}"; do
        export_to "$name" "$tmp/$name.txt"
        cmp -s "$tmp/$name.txt" "requirements/$name.txt" \
            || { echo "requirements/$name.txt is stale: run scripts/lock.sh" >&2; exit 1; }
    done
    echo "uv.lock and requirements/ are up to date"
    exit 0
fi

"$UV" lock "$@"
mkdir -p requirements
for name in "${!EXPORTS[@]}"; do
    export_to "$name" "requirements/$name.txt"
done
echo "wrote uv.lock, requirements/{$(IFS=,; echo "${!EXPORTS[*]}")}.txt"
