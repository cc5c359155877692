# index-bench
