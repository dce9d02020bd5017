"""`vizcli embed`: BERT-family sentence vectors (pooler_output, cls, mean, max), streamed."""
