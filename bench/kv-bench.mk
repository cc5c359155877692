# kv-bench
