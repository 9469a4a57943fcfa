"""The networks: the temporal U-Net denoiser (`unet`), the diffusion process around it (`diffusion`:
noise schedule, losses, the trained model), and the models trained beside it for guidance (`value`:
a return predictor; `classifier`: a per-state classifier), and `steps_to_go`: the steps the offline
data needed between two states, which sizes a first plan."""
