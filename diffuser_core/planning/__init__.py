"""Planning with a trained model: one plan (`planner`), subgoals then segments (`hierarchy`), the
planner a checkpoint calls for (`loading`), the length of each plan (`horizon`), when to replan and
which step to track (`replanning`), and the receding-horizon loop the node and the evaluation both
drive (`receding`)."""
