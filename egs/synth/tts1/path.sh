# Environment of the recipe: the repository's virtual environment (make install), no network, CPU threads.
MAIN_ROOT="${MAIN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
export MAIN_ROOT
export PATH="$MAIN_ROOT/.venv/bin:$PATH"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export PYTHONUNBUFFERED=1
