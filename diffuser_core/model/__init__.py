"""The networks: the temporal U-Net denoiser (`unet`), the diffusion process around it (`diffusion`:
noise schedule, losses, the trained model), and the models trained beside it for guidance (`value`:
a return predictor; `classifier`: a per-state classifier)."""
