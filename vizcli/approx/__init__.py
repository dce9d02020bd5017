"""`vizcli approx`: the notes' universal-approximation claims as experiments."""
