"""BERT-family text models as files: finding a model (the bundled all-MiniLM-L6-v2, a folder, a Hugging Face
cache name), checking it, and reading its config, tokenizer and weights.

Both ``vizcli embed`` and ``vizcli shapes`` read text models through this package (``folders``,
``bert_config``); neither imports the other. Importing it loads nothing heavy.
"""
