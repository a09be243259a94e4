"""Training and evaluation against the seeker: the RL environment, its TRL adapters and `synth-empathy eval`."""
