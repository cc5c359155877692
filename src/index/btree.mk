# B+tree: sources, tests
