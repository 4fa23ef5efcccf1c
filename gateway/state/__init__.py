"""Call history per professional and number: attempts, refusals, opt-outs."""
