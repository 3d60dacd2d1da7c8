"""Domain library of Diamond Opus: everything that runs without the Functions host."""
