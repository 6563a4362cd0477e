# Checks the benchmark scripts share; sourced by them (`source "$BENCH/lib.sh"`), not run.

# Exits with a clear error unless $1 is an executable Patron binary (scripts never build it).
require_patron() {
    if [[ ! -x "$1" ]]; then
        echo "error: no Patron binary at $1 (build it with 'cargo build --release -p patron', or set PATRON_BIN)" >&2
        exit 1
    fi
}

# Exits with a clear error unless GNU time, which measures memory and CPU, is installed.
require_time() {
    if [[ ! -x /usr/bin/time ]]; then
        echo "error: /usr/bin/time is missing (apt-get install time)" >&2
        exit 1
    fi
}

# require_venv VENV MODULES PACKAGE...: creates or completes the Python environment VENV with
# pip's PACKAGEs unless its Python can already `import MODULES` (comma-separated).
require_venv() {
    local venv="$1" modules="$2"
    shift 2
    if ! "$venv/bin/python" -c "import $modules" 2>/dev/null; then
        echo "Setting up $venv ($*)..." >&2
        "${PYTHON:-python3}" -m venv "$venv"
        "$venv/bin/pip" install --quiet --upgrade pip
        "$venv/bin/pip" install --quiet "$@"
    fi
}
