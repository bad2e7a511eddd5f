"""Stage 8, the commands: run, tracking (the TrainerCallback), analyze, paper, sweep, layers,
generate_info. The only stage that knows every other one and touches the file system.
"""
