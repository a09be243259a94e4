"""synth-empathy: synthetic empathetic dialogue data."""
