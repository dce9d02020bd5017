"""The verbs that act on finished outputs: ``vizcli info``, ``verify``, ``merge`` and ``export``.

Each takes any output any vizcli command writes (a Parquet file, a shard folder, or a single-input
file) and reads what kind it is from the output itself (``vizcli.outputs.registry``).
"""
