"""Pure decision code: campaign model, rules, calendars, the engine. No I/O, the clock is an argument."""
