"""`make chaos`: the mixed booking workload under injected faults, then every invariant checked."""
