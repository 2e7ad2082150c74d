"""The tables a run writes, each registered from its own module: the main comparison and the NSNet paper's ablations."""
