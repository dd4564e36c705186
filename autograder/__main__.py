"""`python -m autograder {release,grade,demo} ...` (see README.md and docs/contract.md)."""
from autograder.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
