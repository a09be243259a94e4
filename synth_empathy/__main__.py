from synth_empathy.cli import main

main()
