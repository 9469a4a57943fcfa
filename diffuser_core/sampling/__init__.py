"""Drawing trajectories from a trained model: inpainting of fixed entries (`conditioning`) and the
DDPM / DDIM reverse processes with guidance and warm start (`samplers`)."""
