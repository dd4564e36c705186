"""The grader's commands (``python -m autograder COMMAND``): thin layers over the pipeline."""
