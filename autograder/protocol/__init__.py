"""The check protocol on the grader's side: stored oracle values, hidden checks, secrets."""
