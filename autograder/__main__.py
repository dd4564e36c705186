"""`python -m autograder {release,grade,demo} ...` (see README and DESIGN.md)."""
from autograder.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
