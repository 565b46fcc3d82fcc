"""Where the repository and the tests lie, for test modules in any folder under tests/."""

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
