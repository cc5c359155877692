# hash index: sources, tests
